"""What a unit is asked to do while timed: fixed shapes, a stream of real text, or a latency budget.

Each kind is a small frozen dataclass. It travels to the per-unit worker process as JSON (`to_json` /
`workload_from_json`), and its `settings()` is what the result file records. A new kind (a task's real texts,
a generation workload timing first token and decode rate) is one more subclass with its own `kind`: it
registers itself, so the JSON round trip and the runner need no switch on the name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.text import encode, fixed_shape_inputs

FILLER_TEXT = "the quick brown fox jumps over the lazy dog while the band plays on"
MAX_BUDGET_BATCH = 256

WorkloadKind = Literal["fixed", "text", "budget", "generation"]
Batch = tuple[np.ndarray, np.ndarray]  # (input_ids, attention_mask)

_KINDS: dict[str, type[Workload]] = {}


@dataclass(frozen=True)
class Workload(ABC):
    """One row of the bench per unit. `kind` is the value of the result rows' "workload" field."""

    kind: ClassVar[WorkloadKind]
    #: True when the workload cannot be cut into interleaved bursts (it times a whole search itself), so the
    #: units are timed one after another.
    times_alone: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    @property
    @abstractmethod
    def label(self) -> str:
        """How tables and progress lines name this workload; also recorded as the rows' "workload_label"."""

    def to_json(self) -> dict[str, Any]:
        """Everything the worker needs, as JSON."""
        return {"kind": self.kind} | asdict(self)

    def settings(self) -> dict[str, Any]:
        """What the result file records about this workload (long inputs summarised)."""
        return self.to_json()


@dataclass(frozen=True)
class FixedShape(Workload):
    """The same filler sentence padded to `seq` tokens, `batch` at a time: comparable across models."""

    kind: ClassVar[WorkloadKind] = "fixed"
    batch: int
    seq: int

    @property
    def label(self) -> str:
        return f"B{self.batch} S{self.seq}"

    def inputs(self, tokenizer: Any, max_length: int) -> list[Batch]:
        return [fixed_inputs(tokenizer, self.batch, self.seq)]


@dataclass(frozen=True)
class TextStream(Workload):
    """Real sentences at their natural lengths, `batch` consecutive ones at a time."""

    kind: ClassVar[WorkloadKind] = "text"
    batch: int
    texts: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"text B{self.batch}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch": self.batch, "texts": list(self.texts)}

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch": self.batch, "texts": len(self.texts)}

    def inputs(self, tokenizer: Any, max_length: int) -> list[Batch]:
        return text_batches(tokenizer, list(self.texts), self.batch, max_length)


@dataclass(frozen=True)
class BudgetSearch(Workload):
    """Throughput under a latency budget: the batch doubles until p90 exceeds `budget_ms`."""

    kind: ClassVar[WorkloadKind] = "budget"
    times_alone: ClassVar[bool] = True
    seq: int
    budget_ms: float
    max_batch: int = MAX_BUDGET_BATCH

    @property
    def label(self) -> str:
        return f"budget {self.budget_ms:g} ms S{self.seq}"

    def inputs_at(self, tokenizer: Any, batch: int) -> list[Batch]:
        return [fixed_inputs(tokenizer, batch, self.seq)]


#: Workloads timed as a stream of calls on prepared inputs, in bursts (everything but the budget search).
StreamWorkload = FixedShape | TextStream


@dataclass(frozen=True)
class Generation(Workload):
    """A generative model's chat turn: prefill a `prompt_tokens` prompt for `batch` rows, then `new_tokens`
    greedy decode steps. Rows report time to first token (p50/p90 over runs) and decode tokens/s. A burst is
    whole runs, so units take turns run by run like any interleaved workload."""

    kind: ClassVar[WorkloadKind] = "generation"
    batch: int = 1
    prompt_tokens: int = 32
    new_tokens: int = 128

    @property
    def label(self) -> str:
        return f"gen b{self.batch} p{self.prompt_tokens} +{self.new_tokens}"


#: The generation grid: TTFT at these prompt lengths (batch 1, one new token), decode rate at these batches.
TTFT_PROMPTS = (32, 256, 1024)
DECODE_BATCHES = (1, 8)
DECODE_PROMPT = 32


def generation_workloads(quick: bool, max_length: int, batches: tuple[int, ...] | None = None,
                         prompts: tuple[int, ...] | None = None) -> list[Workload]:  # fmt: skip
    """TTFT rows (1 new token) at each prompt length, then decode rows at each batch (32-token prompt).

    Without `prompts`, lengths past the model's context are left out; a length asked for is refused instead."""
    if prompts is None:
        prompts = tuple(n for n in TTFT_PROMPTS if n + 1 <= max_length)
    for length in prompts:
        if length + 1 > max_length:
            raise UsageError(f"--seq {length}: a prompt must leave room for a token in the {max_length}-token context")
    new_tokens = 32 if quick else 128
    rows: list[Workload] = [Generation(1, n, 1) for n in prompts]
    return rows + [Generation(b, DECODE_PROMPT, new_tokens) for b in batches or DECODE_BATCHES]


def workload_from_json(data: dict[str, Any]) -> Workload:
    fields = dict(data)
    cls = _KINDS[fields.pop("kind")]
    if "texts" in fields:
        fields["texts"] = tuple(fields["texts"])
    return cls(**fields)


def fixed_grid(batches: list[int], seqs: list[int], max_length: int) -> list[Workload]:
    for seq in seqs:
        if seq > max_length:
            raise UsageError(f"--seq {seq} is longer than the model's maximum of {max_length} tokens")
    return [FixedShape(batch=b, seq=s) for s in seqs for b in batches]


def text_stream(texts: list[str], batches: list[int]) -> list[Workload]:
    if not texts:
        raise UsageError("the real-text workload needs at least one text")
    return [TextStream(batch=b, texts=tuple(texts)) for b in batches]


def budget_search(seqs: list[int], budget_ms: float, max_length: int) -> list[Workload]:
    if budget_ms <= 0:
        raise UsageError(f"--budget-ms must be positive, got {budget_ms}")
    fixed_grid([1], seqs, max_length)
    return [BudgetSearch(seq=s, budget_ms=budget_ms) for s in seqs]


def text_batches(tokenizer: Any, texts: list[str], batch: int, max_length: int) -> list[Batch]:
    """Consecutive sentences grouped `batch` at a time, each group padded only to its own longest."""
    groups = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    return [encode(tokenizer, group, max_length, warn=False) for group in groups if len(group) == batch] or [
        encode(tokenizer, texts[:batch], max_length, warn=False)
    ]


def fixed_inputs(tokenizer: Any, batch: int, seq: int) -> Batch:
    return fixed_shape_inputs(tokenizer, batch, seq, FILLER_TEXT)
