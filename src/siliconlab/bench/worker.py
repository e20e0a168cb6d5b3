"""The per-unit benchmark process: load one artifact, time each workload, stream rows back as JSON lines.

Running each unit in its own process gives clean peak-memory figures and keeps a crash (or a leak) in one
engine from ending or skewing the others. Protocol: one JSON object per line on the original stdout; every
library's own printing is moved to stderr.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.bench.floor import encoder_flops
from siliconlab.bench.stats import summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.bench.workloads import fixed_inputs, text_batches
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


def _time_batches(runner: Any, batches: list[tuple[np.ndarray, np.ndarray]], timing: TimingConfig, meter: Any):
    """Cycle through `batches`; returns (samples, tokens per measured call, batch shapes, energy reading)."""
    order: list[int] = []

    def step() -> None:
        index = len(order) % len(batches)
        order.append(index)
        runner.run(*batches[index])

    samples = measure(step, runner.synchronize, timing, on_measure_start=meter.start)
    energy = meter.stop()
    measured = order[-samples.size :]
    return samples, measured, energy


def run_workload(
    runner: Any, tokenizer: Any, spec: dict[str, Any], timing: TimingConfig, config: _Config, device: str
) -> dict[str, Any]:
    max_length = int(spec.get("max_length", 512))
    if spec["kind"] == "budget":
        return _budget(runner, tokenizer, spec, timing, config, device)
    if spec["kind"] == "text":
        batches = text_batches(tokenizer, spec["texts"], spec["batch"], max_length)
    else:
        batches = [fixed_inputs(tokenizer, spec["batch"], spec["seq"])]
    begin = time.perf_counter()
    runner.run(*batches[0])
    runner.synchronize()
    cold_ms = (time.perf_counter() - begin) * 1e3
    meter = meter_for(device)
    samples, measured, energy = _time_batches(runner, batches, timing, meter)
    return _row(spec, batches, samples, measured, energy, cold_ms, config)


def _row(spec, batches, samples, measured, energy, cold_ms, config) -> dict[str, Any]:
    latency = summarize_ms(samples)
    total_s = float(samples.sum())
    sequences = sum(batches[i][0].shape[0] for i in measured)
    tokens = sum(int(batches[i][1].sum()) for i in measured)
    flops = sum(encoder_flops(config, *batches[i][0].shape) for i in measured)
    padded_seq = [batches[i][0].shape[1] for i in measured]
    batch = int(batches[0][0].shape[0])
    return {
        "workload": spec["kind"],
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


def _budget(runner, tokenizer, spec, timing, config, device) -> dict[str, Any]:
    """Double the batch until p90 latency exceeds the budget; report the largest batch that fit."""
    budget, best, searched = float(spec["budget_ms"]), None, []
    batch = 1
    while batch <= int(spec["max_batch"]):
        batches = [fixed_inputs(tokenizer, batch, spec["seq"])]
        runner.run(*batches[0])
        runner.synchronize()
        meter = meter_for(device)
        samples, measured, energy = _time_batches(runner, batches, timing, meter)
        row = _row({"kind": "budget"}, batches, samples, measured, energy, float("nan"), config)
        searched.append({"batch": batch, "p90_ms": row["latency_ms"]["p90"]})
        if row["latency_ms"]["p90"] > budget:
            break
        best = row
        batch *= 2
    if best is None:
        best = row
        best["within_budget"] = False
    else:
        best["within_budget"] = True
    best.update({"budget_ms": budget, "searched": searched})
    return best


class _Accumulated:
    """One workload's inputs and everything its interleaved bursts measured so far."""

    def __init__(self, runner: Any, tokenizer: Any, spec: dict[str, Any], timing: TimingConfig, device: str):
        max_length = int(spec.get("max_length", 512))
        if spec["kind"] == "text":
            self.batches = text_batches(tokenizer, spec["texts"], spec["batch"], max_length)
        else:
            self.batches = [fixed_inputs(tokenizer, spec["batch"], spec["seq"])]
        self.spec, self.device = spec, device
        begin = time.perf_counter()
        runner.run(*self.batches[0])
        runner.synchronize()
        self.cold_ms = (time.perf_counter() - begin) * 1e3
        warm = TimingConfig(timing.warmup_iters, timing.warmup_seconds, min_iters=1, min_seconds=0.0)
        measure(lambda: runner.run(*self.batches[0]), runner.synchronize, warm)
        self.samples: list[np.ndarray] = []
        self.measured: list[int] = []
        self.joules: float | None = 0.0
        self.energy_source, self.energy_reason = "", ""

    def burst(self, runner: Any, seconds: float, min_iters: int) -> np.ndarray:
        """Time at least `min_iters` calls and `seconds`, after one untimed call (the process sat idle)."""
        order: list[int] = []

        def step() -> None:
            index = len(self.measured) + len(order)
            order.append(index % len(self.batches))
            runner.run(*self.batches[order[-1]])

        meter = meter_for(self.device)
        config = TimingConfig(warmup_iters=1, warmup_seconds=0.0, min_iters=min_iters, min_seconds=seconds,
                              max_seconds=max(seconds, 1e-3))  # fmt: skip
        samples = measure(step, runner.synchronize, config, on_measure_start=meter.start)
        energy = meter.stop()
        self.energy_source, self.energy_reason = energy.source, energy.reason
        self.joules = None if energy.joules is None or self.joules is None else self.joules + energy.joules
        self.samples.append(samples)
        self.measured += order[-samples.size :]
        return samples

    def row(self, config: _Config) -> dict[str, Any]:
        samples = np.concatenate(self.samples)
        energy = type("Energy", (), {"source": self.energy_source, "joules": self.joules, "reason": self.energy_reason})
        row = _row(self.spec, self.batches, samples, self.measured, energy, self.cold_ms, config)
        row["rounds"] = {"count": len(self.samples), "p50_ms": [float(np.median(s) * 1e3) for s in self.samples]}
        return row


def serve(runner: Any, tokenizer: Any, job: dict[str, Any], max_length: int, send: Any, commands: Any) -> None:
    """Interleaved timing: the parent sends one command per line and this process answers each.

    {"cmd": "burst", "index": i, "seconds": s, "min_iters": n} -> {"type": "burst", "index": i, "count", "seconds"}
    {"cmd": "finish", "index": i} -> {"type": "row", "row": {...}};  {"cmd": "quit"} ends the process.
    """
    timing, config = TimingConfig(**job["timing"]), _Config(job["config"])
    unit_device = job["device"]
    workloads: dict[int, _Accumulated] = {}
    for line in commands:
        command = json.loads(line)
        if command["cmd"] == "quit":
            return
        index = int(command["index"])
        if command["cmd"] == "burst":
            if index not in workloads:
                spec = job["workloads"][index] | {"max_length": max_length}
                workloads[index] = _Accumulated(runner, tokenizer, spec, timing, unit_device)
            samples = workloads[index].burst(runner, float(command["seconds"]), int(command["min_iters"]))
            send({"type": "burst", "index": index, "count": int(samples.size), "seconds": float(samples.sum())})
        elif command["cmd"] == "finish":
            row = workloads.pop(index).row(config)
            send({"type": "row", "row": row | {"index": index, "unit": job["unit"], "load_s": job["load_s"]}})


def _unit_from(path: str) -> Any:
    import importlib

    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target()


def main(job_path: str, mode: str = "time") -> int:
    """mode 'convert': convert (or reuse) and report; 'time': load the artifact and time every workload;
    'serve': load, then time in bursts as the parent commands (interleaved with the other units).

    The two run in separate processes so the timing process's peak memory is the unit's own, not the
    converter's (int8 calibration alone can take gigabytes).
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the engines print goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    job = json.loads(Path(job_path).read_text())

    def send(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    from transformers import AutoTokenizer

    from siliconlab.convert.pipeline import Converter, load_artifact
    from siliconlab.models import resolve
    from siliconlab.units import get_unit

    unit = _unit_from(job["unit_class"]) if job.get("unit_class") else get_unit(job["unit"])
    # Converting here too (not in the parent) means a native crash during export or parity ends only this unit.
    outcome = Converter(resolve(job["model"]), Path(job["cache_dir"]), job["threads"]).convert_unit(unit)
    send({"type": "converted", "status": outcome.status, "error": outcome.error, "manifest": outcome.manifest})
    if not outcome.ok or mode == "convert":
        return 0
    artifact_dir = outcome.artifact_dir
    timing = TimingConfig(**job["timing"])
    config = _Config(job["config"])
    started = time.perf_counter()
    runner, manifest = load_artifact(artifact_dir, unit, job["threads"])
    load_s = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(artifact_dir)
    send({"type": "loaded", "load_s": load_s})
    if mode == "serve":
        max_length = int(manifest.get("max_length", 512))
        serve(runner, tokenizer, job | {"device": unit.device, "load_s": load_s}, max_length, send, sys.stdin)
        return 0
    for index, spec in enumerate(job["workloads"]):
        send({"type": "start", "index": index})
        spec = spec | {"max_length": int(manifest.get("max_length", 512))}
        row = run_workload(runner, tokenizer, spec, timing, config, unit.device)
        row.update({"unit": unit.name, "load_s": load_s, "index": index})
        send({"type": "row", "row": row})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "time"))
