"""bench: convert (or reuse) each unit's artifact, time it on each workload, compare with the baseline unit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab import __version__
from siliconlab.bench.machine import machine_info
from siliconlab.bench.stats import summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.convert.pipeline import Converter, load_artifact
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.models.base import ModelSource
from siliconlab.text import encode, fixed_shape_inputs
from siliconlab.units.base import Unit

RESULT_SCHEMA = "siliconlab.bench/1"
FILLER_TEXT = "the quick brown fox jumps over the lazy dog while the band plays on"


@dataclass
class Workload:
    kind: str  # fixed | text
    batch: int
    seq: int
    input_ids: np.ndarray = field(repr=False)
    attention_mask: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        return f"B{self.batch} S{self.seq}" + (" text" if self.kind == "text" else "")


def build_workloads(
    tokenizer: Any, max_length: int, batches: list[int], seqs: list[int], text: str | None
) -> list[Workload]:
    if text is not None:
        ids, mask = encode(tokenizer, [text], max_length)
        return [
            Workload("text", b, ids.shape[1], np.repeat(ids, b, axis=0), np.repeat(mask, b, axis=0)) for b in batches
        ]
    workloads = []
    for seq in seqs:
        if seq > max_length:
            raise UsageError(f"--seq {seq} is longer than the model's maximum of {max_length} tokens")
        for batch in batches:
            ids, mask = fixed_shape_inputs(tokenizer, batch, seq, FILLER_TEXT)
            workloads.append(Workload("fixed", batch, seq, ids, mask))
    return workloads


def run_bench(
    source: ModelSource,
    units: list[Unit],
    batches: list[int],
    seqs: list[int],
    cache_dir: Path,
    threads: int,
    timing: TimingConfig,
    baseline: str,
    text: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_failure: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, Any]:
    converter = Converter(source, cache_dir, threads)
    model = source.load()
    workloads = build_workloads(model.tokenizer, model.max_length, batches, seqs, text)
    del model
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []

    def fail(unit: str, error: str) -> None:
        failures.append({"unit": unit, "error": error})
        if on_failure:
            on_failure(failures[-1])

    for unit in units:
        outcome = converter.convert_unit(unit)
        if not outcome.ok:
            fail(unit.name, outcome.error)
            continue
        try:
            started = time.perf_counter()
            runner, manifest = load_artifact(outcome.artifact_dir, unit, threads)
            load_s = time.perf_counter() - started
            for workload in workloads:
                ids, mask = workload.input_ids, workload.attention_mask
                begin = time.perf_counter()
                runner.run(ids, mask)
                runner.synchronize()
                cold_ms = (time.perf_counter() - begin) * 1e3
                samples = measure(lambda r=runner, i=ids, m=mask: r.run(i, m), runner.synchronize, timing)
                latency = summarize_ms(samples)
                tokens = int(mask.sum())
                row = {
                    "unit": unit.name,
                    "model": source.name,
                    "workload": workload.kind,
                    "batch": workload.batch,
                    "seq": workload.seq,
                    "latency_ms": latency,
                    "iterations": int(samples.size),
                    "cold_ms": cold_ms,
                    "load_s": load_s,
                    "throughput": {
                        "sequences_per_s": workload.batch / (latency["p50"] / 1e3),
                        "tokens_per_s": tokens / (latency["p50"] / 1e3),
                    },
                    "parity": manifest.get("parity"),
                    "speedup": None,
                }
                rows.append(row)
                if on_row:
                    on_row(row)
        except SiliconlabError as exc:
            fail(unit.name, str(exc))
        except Exception as exc:  # a crashing unit is reported; the others still run
            fail(unit.name, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    add_speedups(rows, baseline)
    return {
        "schema": RESULT_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "siliconlab_version": __version__,
        "machine": machine_info(),
        "settings": {"threads": threads, "timing": timing.to_dict(), "baseline": baseline, "text": text},
        "model": source.name,
        "results": rows,
        "failures": failures,
    }


def add_speedups(rows: list[dict[str, Any]], baseline: str) -> None:
    """speedup = baseline p50 / unit p50 on the same workload, in the same run; None when no baseline row."""
    base = {(r["workload"], r["batch"], r["seq"]): r["latency_ms"]["p50"] for r in rows if r["unit"] == baseline}
    for row in rows:
        reference = base.get((row["workload"], row["batch"], row["seq"]))
        row["speedup"] = reference / row["latency_ms"]["p50"] if reference else None
