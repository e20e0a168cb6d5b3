"""Contention: the bench notices other processes taking the CPU, flags those rows, and never headlines an
unstable speedup."""

from __future__ import annotations

import subprocess
import time

from rich.console import Console

from siliconlab.bench.contention import ContentionWatch, flagged, unstable
from siliconlab.bench.report import print_table
from siliconlab.monitor.sampler import Sample


def _start_outside_hogs(count: int, seconds: int) -> None:
    """CPU hogs that are *not* descendants of this process (the bench counts its own tree as its own work):
    each is double-forked by a shell that exits at once, so it is re-parented away; `timeout` bounds it."""
    loops = " ".join(f"(timeout {seconds} sh -c 'while :; do :; done' >/dev/null 2>&1 &);" for _ in range(count))
    subprocess.run(["sh", "-c", loops], check=True)


def test_a_cpu_hog_beside_the_bench_is_seen_and_flagged():
    watch = ContentionWatch(interval=0.1).start()
    try:
        _start_outside_hogs(2, seconds=3)
        begin = time.perf_counter()
        time.sleep(2.0)
        busy = watch.window(begin + 0.3, time.perf_counter())
    finally:
        summary = watch.stop()
    assert busy["other_cores"]["mean"] > 0.5, busy
    assert busy["flagged"] and "other processes used" in busy["reasons"][0]
    assert "before" in summary


def test_window_flags_steal_and_other_cores_from_samples():
    watch = ContentionWatch(interval=0.1)
    watch.sampler.samples.extend(
        [
            Sample(1.0, {"procs.other_cores": 0.1, "cpu.steal_pct": 12.0, "loadavg.load_1m": 0.5}, 0.0, 0.0),
            Sample(2.0, {"procs.other_cores": 0.1, "cpu.steal_pct": 14.0, "loadavg.load_1m": 0.6}, 0.0, 0.0),
            Sample(9.0, {"procs.other_cores": 1.9, "cpu.steal_pct": 0.0, "loadavg.load_1m": 3.0}, 0.0, 0.0),
        ]
    )
    window = watch.window(0.5, 2.5)
    assert window["samples"] == 2 and window["steal_pct"]["mean"] == 13.0
    assert window["flagged"] and window["reasons"] == ["the hypervisor stole 13.0 % of CPU time"]
    assert not watch.window(0.5, 0.9)["flagged"]  # no samples: nothing to flag


def _row(unit: str, p50: float, rounds: tuple[float, float] | None, contended: bool = False) -> dict:
    row = {
        "unit": unit, "workload": "text", "workload_label": "text B1", "batch": 1, "seq": 20,
        "latency_ms": {"p50": p50, "p90": p50, "p99": p50}, "throughput": {"sequences_per_s": 1e3 / p50},
        "speedup": 12.0 / p50, "parity": {"cosine_min": 1.0},
        "contention": {"flagged": contended, "reasons": ["other processes used 1.93 cores"] if contended else []},
    }  # fmt: skip
    if rounds:
        row["speedup_rounds"] = {"min": rounds[0], "median": sum(rounds) / 2, "max": rounds[1]}
    return row


def test_unstable_speedup_is_never_a_headline_and_contended_rows_are_marked():
    rows = [_row("torch-cpu-fp32", 12.0, None), _row("onnxruntime-cpu-int8", 2.0, (1.9, 6.1), contended=True)]
    assert unstable(rows[1]) and flagged(rows[1]) and not flagged(rows[0])
    result = {
        "model": "minilm", "machine": {"cpu": "AMD EPYC", "cores_physical": 2, "gpus": []},
        "settings": {"threads": 2, "baseline": "torch-cpu-fp32"}, "results": rows, "failures": [],
    }  # fmt: skip
    console = Console(record=True, width=100)
    print_table(result, console)
    text = console.export_text()
    assert "unstable" in text and "6.00x" not in text
    assert "onnxruntime-cpu-int8 !" in text and "measured under contention" in text
