"""What watching costs: the monitor's own CPU per poll, and the bench with and without --monitor, interleaved.

    PYTHONPATH=src python benchmarks/monitor/overhead.py [--seconds 10] [--reps 3] [--sampler-only]

1. Sampler cost: every source `siliconlab monitor` polls (monitor_sources(): load, /proc/stat, per-core use,
   clocks, memory, the process scan, RAPL/NVML/powermetrics where present) at intervals 0.1, 0.5 and 1 s,
   each for --seconds. Reported: this process's CPU time over the wall time (core-%: 1.0 % = a hundredth of
   one core) and per poll (ms), and the polling thread's own CPU per poll (thread_time) as a cross-check.
2. bench with and without --monitor: `bench minilm --units onnxruntime-cpu-int8 --quick --no-floor`
   (the unit is its own baseline: one unit process), run 2 x --reps times in ABBA order so drift falls on
   both; p50 latency and wall time per run, medians per mode. The artifact must be in the store already.
Every figure is measured when the script runs; the machine's load is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def sampler_cost(interval: float, seconds: float) -> dict[str, float]:
    from siliconlab.monitor.sampler import Sampler
    from siliconlab.monitor.sources import monitor_sources

    sampler = Sampler(monitor_sources(), interval=interval, capacity=100_000)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    summary = sampler.summary()
    polls = summary["samples"]
    return {"interval": interval, "polls": polls, "core_pct": 100 * cpu / wall, "ms_per_poll": 1e3 * cpu / polls,
            "thread_ms": summary["cpu_ms"]["mean"], "wall_ms": summary["cost_ms"]["mean"]}  # fmt: skip


def bench_once(monitor: bool) -> dict[str, float]:
    from siliconlab.bench.plan import BenchOptions, build_plan
    from siliconlab.bench.runner import run_plan
    from siliconlab.cli.common import DEFAULT_CACHE

    options = BenchOptions(cache_dir=Path(DEFAULT_CACHE), model="minilm", units="onnxruntime-cpu-int8",
                           baseline="onnxruntime-cpu-int8", quick=True, floor=False, monitor=monitor)  # fmt: skip
    begin = time.perf_counter()
    result = run_plan(build_plan(options))
    wall = time.perf_counter() - begin
    row = result["results"][0]
    before = (result.get("machine_load") or {}).get("before", {}).get("other_cores", {}).get("mean", float("nan"))
    return {"p50": row["latency_ms"]["p50"], "seq_s": row["throughput"]["sequences_per_s"], "wall": wall,
            "other": before}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per sampler interval")
    parser.add_argument("--reps", type=int, default=2, help="ABBA blocks of the bench comparison")
    parser.add_argument("--sampler-only", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the unit processes' weight-loading bars
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    print(f"machine: {os.cpu_count()} logical CPUs, load average now {os.getloadavg()[0]:.2f}")
    print(
        "\n| interval s | polls | monitor CPU, % of one core | CPU ms per poll | polling thread ms/poll "
        "| wall ms/poll |"
    )
    print("|---|---|---|---|---|---|")
    for interval in (0.1, 0.5, 1.0):
        c = sampler_cost(interval, args.seconds)
        print(f"| {c['interval']:g} | {c['polls']} | {c['core_pct']:.2f} | {c['ms_per_poll']:.1f} | "
              f"{c['thread_ms']:.1f} | {c['wall_ms']:.1f} |")  # fmt: skip
    if args.sampler_only:
        return
    print("\n| run | --monitor | p50 ms | seq/s | wall s | other processes before, cores |")
    print("|---|---|---|---|---|---|")
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    order = [m for _ in range(args.reps) for m in (False, True, True, False)]
    for index, monitor in enumerate(order, 1):
        r = bench_once(monitor)
        runs[monitor].append(r)
        print(f"| {index} | {'on' if monitor else 'off'} | {r['p50']:.2f} | {r['seq_s']:.1f} | {r['wall']:.1f} | "
              f"{r['other']:.2f} |", flush=True)  # fmt: skip
    off, on = (statistics.median(r["p50"] for r in runs[m]) for m in (False, True))
    print(
        f"\nmedian p50: off {off:.2f} ms, on {on:.2f} ms, on/off {on / off:.3f}; "
        f"load average now {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
