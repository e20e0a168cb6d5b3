"""Generation as a bench workload: time to first token and decode tokens/s, timed by the one bench loop.

A `Generation` workload (bench/workloads.py) runs in the unit's worker process (bench/worker.py) like any
other: the parent sends bursts under a deadline, units take turns burst by burst, each row is saved as it
arrives. This module is the worker's side of it: `GenerationRun` times greedy runs on real prompts
(chatterbot-corpus questions repeated to length; seeded random ids for architecture-only models) with every
step's arrival timestamped. A TTFT row (one new token) samples each run's time to first token; a decode row
samples every decode step, and reports decode tokens/s (batch x steps / decode time) per run, averaged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.bench.memory import gpu_memory_mb, peak_rss_mb
from siliconlab.bench.stats import summarize_ms
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import DECODE_BATCHES, TTFT_PROMPTS, Generation, generation_workloads

__all__ = ["DECODE_BATCHES", "TTFT_PROMPTS", "GenerationRun", "generation_workloads", "prompt_ids", "run_bench"]


def prompt_ids(tokenizer: Any, vocab: int, batch: int, length: int) -> np.ndarray:
    """Exactly `length` real tokens (chat questions, in order, repeated) per row; seeded random ids without a
    tokenizer."""
    if tokenizer is None:
        return np.random.default_rng(length).integers(0, vocab, (batch, length), dtype=np.int64)
    from siliconlab.data.chat import chat_questions

    ids: list[int] = []
    for question in chat_questions():
        ids += tokenizer(" " + question, add_special_tokens=False)["input_ids"]
        if len(ids) >= length:
            break
    while len(ids) < length:
        ids += ids
    return np.tile(np.asarray(ids[:length], dtype=np.int64), (batch, 1))


def prompt_source(artifact_dir: Path, has_tokenizer: bool) -> tuple[Any, int]:
    """The worker's (tokenizer or None, vocabulary size) for prompt_ids, read from the converted artifact."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(artifact_dir, trust_remote_code=False) if has_tokenizer else None
    return tokenizer, int(AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False).vocab_size)


class GenerationRun:
    """One generation workload on this unit, and every burst timed on it so far.

    Created on the workload's first burst: one short cold run (first-call allocations, graph set-up; reported
    as cold_ms), then the warm-up runs. A burst is whole runs: at least one, until it holds `min_iters`
    samples and `seconds` of them (or `max_seconds` passed).
    """

    done = False  # more bursts may follow; the parent decides when there were enough

    def __init__(self, runner: Any, ids: np.ndarray, workload: Generation, timing: TimingConfig):
        self.runner, self.ids, self.workload = runner, ids, workload
        begin = time.perf_counter()
        runner.generate(ids[:, : min(8, ids.shape[1])], 2)
        runner.synchronize()
        self.cold_ms = (time.perf_counter() - begin) * 1e3
        started, runs = time.perf_counter(), 0
        while runs < timing.warmup_iters or time.perf_counter() - started < timing.warmup_seconds:
            self._run()
            runs += 1
        self.ttft_s: list[float] = []
        self.rates: list[float] = []
        self.steps_s: list[float] = []
        self.bursts: list[np.ndarray] = []
        self.longest_run_s = 0.0

    def _run(self) -> tuple[float, list[float]]:
        """One greedy run: (its start, the arrival time of each step's tokens)."""
        stamps: list[float] = []
        begin = time.perf_counter()
        self.runner.generate(self.ids, self.workload.new_tokens, lambda _tokens: stamps.append(time.perf_counter()))
        self.runner.synchronize()
        return begin, stamps

    def burst(self, seconds: float, min_iters: int, max_seconds: float) -> np.ndarray:
        samples: list[float] = []
        started = time.perf_counter()
        while True:
            begin, stamps = self._run()
            self.longest_run_s = max(self.longest_run_s, stamps[-1] - begin)
            self.ttft_s.append(stamps[0] - begin)
            if len(stamps) > 1:  # a decode row: its samples are the steps after the first token
                gaps = np.diff(stamps).tolist()
                samples += gaps
                self.steps_s += gaps
                self.rates.append(self.workload.batch * (len(stamps) - 1) / (stamps[-1] - stamps[0]))
            else:
                samples.append(stamps[0] - begin)
            elapsed = time.perf_counter() - started
            if (len(samples) >= min_iters and elapsed >= seconds) or elapsed >= max_seconds:
                break
        self.bursts.append(np.asarray(samples))
        return self.bursts[-1]

    def row(self, kind: str, config: Any, rounds: bool) -> dict[str, Any]:
        """The result row. `latency_ms` is what speedups and charts compare: TTFT on a TTFT row, one decode step
        on a decode row; `rounds` adds each burst's median, for round-by-round speedups."""
        samples, ttft = np.concatenate(self.bursts), np.asarray(self.ttft_s) * 1e3
        workload = self.workload
        row: dict[str, Any] = {
            "workload": kind,
            "batch": workload.batch,
            "seq": workload.prompt_tokens,
            "new_tokens": workload.new_tokens,
            "ttft_ms": {"p50": float(np.percentile(ttft, 50)), "p90": float(np.percentile(ttft, 90)), "n": len(ttft)},
            "latency_ms": summarize_ms(samples),
            "iterations": int(samples.size),
            "runs": len(self.ttft_s),
            "cold_ms": self.cold_ms,
            "peak_rss_mb": peak_rss_mb(),
            "gpu_memory_mb": gpu_memory_mb(),
        }
        if self.rates:
            steps_ms = np.asarray(self.steps_s) * 1e3
            row["decode_tokens_per_s"] = float(np.mean(self.rates))
            row["decode_step_ms"] = {
                "p50": float(np.percentile(steps_ms, 50)),
                "p90": float(np.percentile(steps_ms, 90)),
            }
        if rounds:
            row["rounds"] = {"count": len(self.bursts), "p50_ms": [float(np.median(s) * 1e3) for s in self.bursts]}
        return row


def run_bench(source: Any, units: list[Any], cache: Path, threads: int, quick: bool,
              on_row: Any = None) -> dict[str, Any]:  # fmt: skip
    """The default generation grid of `source` on `units` through the bench loop (runner.run_plan): the result
    document. For scripts that hold a source and units already; `siliconlab bench` builds its plan from options."""
    from siliconlab.bench.kinds import kind_of
    from siliconlab.bench.plan import BenchPlan
    from siliconlab.bench.runner import Events, run_plan
    from siliconlab.models.generative import context_length

    workloads = generation_workloads(quick, context_length(source.config))
    plan = BenchPlan(
        source=source,
        units=list(units),
        workloads=workloads,
        cache_dir=Path(cache),
        threads=threads,
        timing=TimingConfig.generation(quick),
        baseline="torch-cpu-fp32",
        config={},
        measure_floor=False,
        quick=quick,
        kind=kind_of(source),
    )
    return run_plan(plan, Events(on_row=on_row))
