"""What a unit is asked to do while timed: fixed shapes, a stream of real text, or a latency budget.

Workload specs are plain dicts so they travel to the per-unit worker process as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.text import encode, fixed_shape_inputs

FILLER_TEXT = "the quick brown fox jumps over the lazy dog while the band plays on"
MAX_BUDGET_BATCH = 256


def fixed_grid(batches: list[int], seqs: list[int], max_length: int) -> list[dict[str, Any]]:
    for seq in seqs:
        if seq > max_length:
            raise UsageError(f"--seq {seq} is longer than the model's maximum of {max_length} tokens")
    return [{"kind": "fixed", "batch": b, "seq": s} for s in seqs for b in batches]


def text_stream(texts: list[str], batches: list[int]) -> list[dict[str, Any]]:
    if not texts:
        raise UsageError("the real-text workload needs at least one text")
    return [{"kind": "text", "batch": b, "texts": list(texts)} for b in batches]


def budget_search(seqs: list[int], budget_ms: float, max_length: int) -> list[dict[str, Any]]:
    if budget_ms <= 0:
        raise UsageError(f"--budget-ms must be positive, got {budget_ms}")
    fixed_grid([1], seqs, max_length)
    return [{"kind": "budget", "seq": s, "budget_ms": budget_ms, "max_batch": MAX_BUDGET_BATCH} for s in seqs]


def label(spec: dict[str, Any]) -> str:
    if spec["kind"] == "text":
        return f"text B{spec['batch']}"
    if spec["kind"] == "budget":
        return f"budget {spec['budget_ms']:g} ms S{spec['seq']}"
    return f"B{spec['batch']} S{spec['seq']}"


def text_batches(tokenizer: Any, texts: list[str], batch: int, max_length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive sentences grouped `batch` at a time, each group padded only to its own longest."""
    groups = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    return [encode(tokenizer, group, max_length, warn=False) for group in groups if len(group) == batch] or [
        encode(tokenizer, texts[:batch], max_length, warn=False)
    ]


def fixed_inputs(tokenizer: Any, batch: int, seq: int) -> tuple[np.ndarray, np.ndarray]:
    return fixed_shape_inputs(tokenizer, batch, seq, FILLER_TEXT)
