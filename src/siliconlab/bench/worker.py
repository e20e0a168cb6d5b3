"""The per-unit benchmark process: convert (or reuse) one artifact, or load it and time workloads on command.

Running each unit in its own process gives clean peak-memory figures and keeps a crash (or a leak) in one
engine from ending or skewing the others. Protocol: one JSON object per line on the original stdout; every
library's own printing is moved to stderr. Commands arrive one per line on stdin.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.bench.floor import encoder_flops
from siliconlab.bench.stats import summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.bench.workloads import Batch, BudgetSearch, StreamWorkload, Workload, workload_from_json
from siliconlab.monitor.energy import meter_for


def peak_rss_mb() -> float:
    """Peak resident memory of this process. On Linux, VmHWM: ru_maxrss survives fork+exec and would report
    the parent's peak when that was larger."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def gpu_memory_mb() -> dict[str, float] | None:
    """torch's peak allocation in this process and NVML's used memory on the card (None without CUDA)."""
    from siliconlab.monitor import nvml

    peak = nvml.torch_peak_bytes()
    if peak is None:
        return None
    memory: dict[str, float] = {"torch_peak": peak / 2**20}
    if nvml.available()[0]:
        memory |= {f"device_{k}": v / 2**20 for k, v in nvml.memory_used().items()}
    return memory


class _Config:
    def __init__(self, values: dict[str, int]):
        self.__dict__.update(values)


@dataclass
class _Energy:
    source: str
    joules: float | None
    reason: str


class Measurement:
    """One workload's inputs on this unit and every burst timed on them so far.

    Created on the workload's first burst: one cold call (reported as cold_ms), then the warm-up.
    """

    done = False  # more bursts may follow; the parent decides when there were enough

    def __init__(self, runner: Any, batches: list[Batch], timing: TimingConfig, device: str):
        self.runner, self.batches, self.device = runner, batches, device
        begin = time.perf_counter()
        runner.run(*batches[0])
        runner.synchronize()
        self.cold_ms = (time.perf_counter() - begin) * 1e3
        warm = TimingConfig(timing.warmup_iters, timing.warmup_seconds, min_iters=1, min_seconds=0.0)
        measure(lambda: runner.run(*batches[0]), runner.synchronize, warm)
        self.samples: list[np.ndarray] = []
        self.measured: list[int] = []
        self.energy = _Energy("", 0.0, "")

    def burst(self, seconds: float, min_iters: int, max_seconds: float) -> np.ndarray:
        """Time at least `min_iters` calls and `seconds` (stopping at `max_seconds` with 3 samples), after one
        untimed call (the process may have sat idle while other units were timed)."""
        order: list[int] = []

        def step() -> None:
            order.append((len(self.measured) + len(order)) % len(self.batches))
            self.runner.run(*self.batches[order[-1]])

        meter = meter_for(self.device)
        config = TimingConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=min_iters, min_seconds=seconds,
                              max_seconds=max(max_seconds, 1e-3))  # fmt: skip
        samples = measure(step, self.runner.synchronize, config, on_measure_start=meter.start)
        energy = meter.stop()
        joules = self.energy.joules
        self.energy = _Energy(
            energy.source, None if energy.joules is None or joules is None else joules + energy.joules, energy.reason
        )
        self.samples.append(samples)
        self.measured += order[-samples.size :]
        return samples

    def row(self, kind: str, config: _Config, rounds: bool) -> dict[str, Any]:
        """The result row; `rounds` adds each burst's median, for round-by-round speedups of interleaved units."""
        samples, measured = np.concatenate(self.samples), list(self.measured)
        passes = len(measured) // len(self.batches)
        if len(self.batches) > 1 and passes:
            # A stream is measured in whole passes, so every unit's figures cover the same texts equally often
            # (a slow unit that stopped mid-stream would otherwise be judged on a different, shorter subset).
            keep = passes * len(self.batches)
            samples, measured = samples[:keep], measured[:keep]
        row = _row(kind, self.batches, samples, measured, self.energy, self.cold_ms, config)
        if len(self.batches) > 1:
            row["stream_passes"] = passes
        if rounds:
            row["rounds"] = {"count": len(self.samples), "p50_ms": [float(np.median(s) * 1e3) for s in self.samples]}
        return row


def _row(kind, batches, samples, measured, energy, cold_ms, config) -> dict[str, Any]:
    latency = summarize_ms(samples)
    total_s = float(samples.sum())
    sequences = sum(batches[i][0].shape[0] for i in measured)
    tokens = sum(int(batches[i][1].sum()) for i in measured)
    flops = sum(encoder_flops(config, *batches[i][0].shape) for i in measured)
    padded_seq = [batches[i][0].shape[1] for i in measured]
    batch = int(batches[0][0].shape[0])
    return {
        "workload": kind,
        "batch": batch,
        "seq": int(round(float(np.mean(padded_seq)))),
        "tokens_per_sequence": tokens / max(sequences, 1),
        "latency_ms": latency,
        "iterations": int(samples.size),
        "cold_ms": cold_ms,
        "throughput": {"sequences_per_s": sequences / total_s, "tokens_per_s": tokens / total_s},
        "gflops_per_s": flops / total_s / 1e9,
        "flops_per_batch": flops / samples.size,
        "energy": {
            "source": energy.source,
            "joules_per_batch": energy.joules / samples.size if energy.joules is not None else None,
            "joules_per_sequence": energy.joules / sequences if energy.joules is not None else None,
            "reason": energy.reason,
        },
        "peak_rss_mb": peak_rss_mb(),
        "gpu_memory_mb": gpu_memory_mb(),
    }


class BudgetRun:
    """The budget search, done whole in its one burst: double the batch until p90 latency exceeds the budget,
    and report the largest batch that fit (or batch 1, marked not within budget)."""

    done = True

    def __init__(self, runner: Any, tokenizer: Any, workload: BudgetSearch, timing: TimingConfig, config: _Config,
                 device: str):  # fmt: skip
        self.runner, self.tokenizer, self.workload = runner, tokenizer, workload
        self.timing, self.config, self.device = timing, config, device
        self.best: dict[str, Any] | None = None

    def burst(self, seconds: float, min_iters: int, max_seconds: float) -> np.ndarray:
        budget, timing, best, searched = self.workload.budget_ms, self.timing, None, []
        batch = 1
        while batch <= self.workload.max_batch:
            measurement = Measurement(self.runner, self.workload.inputs_at(self.tokenizer, batch), timing, self.device)
            samples = measurement.burst(timing.min_seconds, timing.min_iters, timing.max_seconds)
            row = measurement.row(self.workload.kind, self.config, rounds=False) | {"cold_ms": float("nan")}
            searched.append({"batch": batch, "p90_ms": row["latency_ms"]["p90"]})
            if row["latency_ms"]["p90"] > budget:
                break
            best, best_samples = row, samples
            batch *= 2
        if best is None:
            best, best_samples = row | {"within_budget": False}, samples
        else:
            best["within_budget"] = True
        self.best = best | {"budget_ms": budget, "searched": searched}
        return best_samples

    def row(self, kind: str, config: _Config, rounds: bool) -> dict[str, Any]:
        assert self.best is not None, "finish before the search ran"
        return self.best


def _start(runner: Any, tokenizer: Any, workload: Workload, job: dict[str, Any]) -> Measurement | BudgetRun:
    timing = TimingConfig(**job["timing"])
    if isinstance(workload, BudgetSearch):
        return BudgetRun(runner, tokenizer, workload, timing, _Config(job["config"]), job["device"])
    assert isinstance(workload, StreamWorkload)
    return Measurement(runner, workload.inputs(tokenizer, job["max_length"]), timing, job["device"])


def serve(runner: Any, tokenizer: Any, job: dict[str, Any], send: Callable[[dict], None], commands: Iterable[str]):
    """Time workloads as the parent commands, one command per line, each answered:

    {"cmd": "burst", "index": i, "seconds": s, "min_iters": n, "max_seconds": m}
        -> {"type": "burst", "index": i, "count", "seconds", "done"}  (done: the workload needs no more bursts)
    {"cmd": "finish", "index": i, "rounds": bool} -> {"type": "row", "row": {...}};  {"cmd": "quit"} ends it.
    """
    workloads = [workload_from_json(w) for w in job["workloads"]]
    config = _Config(job["config"])
    active: dict[int, Measurement | BudgetRun] = {}
    for line in commands:
        command = json.loads(line)
        if command["cmd"] == "quit":
            return
        index = int(command["index"])
        if command["cmd"] == "burst":
            if index not in active:
                active[index] = _start(runner, tokenizer, workloads[index], job)
            run = active[index]
            samples = run.burst(float(command["seconds"]), int(command["min_iters"]), float(command["max_seconds"]))
            count, seconds = int(samples.size), float(samples.sum())
            send({"type": "burst", "index": index, "count": count, "seconds": seconds, "done": run.done})
        elif command["cmd"] == "finish":
            row = active.pop(index).row(workloads[index].kind, config, rounds=bool(command.get("rounds")))
            facts = {"index": index, "unit": job["unit"], "load_s": job["load_s"]}
            send({"type": "row", "row": row | facts | {"executed_precision": job.get("executed_precision")}})


def _unit_from(path: str) -> Any:
    import importlib

    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target()


def main(job_path: str, mode: str) -> int:
    """mode 'convert': convert (or reuse) the artifact and report; 'serve': load it, then time on command.

    The two run in separate processes so the timing process's peak memory is the unit's own, not the
    converter's (int8 calibration alone can take gigabytes); converting in a child too (not in the parent)
    means a native crash during export or parity ends only this unit.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the engines print goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    job = json.loads(Path(job_path).read_text())

    def send(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    from transformers import AutoTokenizer

    from siliconlab.convert.pipeline import Converter, executed_precision, load_artifact
    from siliconlab.models import resolve
    from siliconlab.units import get_unit

    unit = _unit_from(job["unit_class"]) if job.get("unit_class") else get_unit(job["unit"])
    if mode == "convert":
        outcome = Converter(resolve(job["model"]), Path(job["cache_dir"]), job["threads"]).convert_unit(unit)
        built = str(outcome.artifact_dir) if outcome.ok else None
        send({"type": "converted", "status": outcome.status, "error": outcome.error, "manifest": outcome.manifest,
              "artifact_dir": built})  # fmt: skip
        return 0
    artifact_dir = Path(job["artifact_dir"])
    started = time.perf_counter()
    runner, manifest = load_artifact(artifact_dir, unit, job["threads"])
    load_s = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(artifact_dir, trust_remote_code=False)
    send({"type": "loaded", "load_s": load_s})
    facts = {"device": unit.device, "load_s": load_s, "max_length": int(manifest.get("max_length", 512)),
             "executed_precision": executed_precision(runner, unit)}  # fmt: skip
    serve(runner, tokenizer, job | facts, send, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
