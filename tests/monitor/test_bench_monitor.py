"""bench --monitor: per-row readings over the unit's own bursts, the flags, timelines, report and chart."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from siliconlab.bench.charts import write_charts
from siliconlab.bench.plan import BenchPlan
from siliconlab.bench.report import markdown
from siliconlab.bench.runner import run_plan
from siliconlab.bench.timeline import apply_flags, counter_at, flags, row_monitor, unit_timeline
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import FixedShape
from siliconlab.models import resolve
from siliconlab.monitor.sampler import Sample
from siliconlab.units import get_unit


def _samples() -> list[Sample]:
    """Polls at 0..9 s: clock 3000 MHz except 2400 at t=6; others' cores 0.1 except 1.0 at 6-7; 10 J/s."""
    return [Sample(float(t), {"clock.min_mhz": 2400.0 if t == 6 else 3000.0, "clock.max_mhz": 3000.0,
                              "procs.other_cores": 1.0 if t in (6, 7) else 0.1, "gpu0.energy_j": 10.0 * t,
                              "gpu0.throttle": 0x40 if t == 7 else 0x1}, 0.001, 0.001) for t in range(10)]  # fmt: skip


def test_rows_read_only_their_own_spans_and_flag_clock_drops_and_other_processes():
    samples = _samples()
    quiet = row_monitor(samples, [(0.5, 2.5), (3.5, 4.5)], reference_mhz=3000.0)
    assert quiet["samples"] == 3 and quiet["flags"] == [] and quiet["gpu_slowdowns"] == []
    assert quiet["energy_j"]["gpu0.energy_j"] == pytest.approx(10 * (2.0 + 1.0))  # interpolated at the edges
    busy = row_monitor(samples, [(5.5, 7.5)], reference_mhz=3000.0)
    assert busy["flags"] == ["CPU clock dropped to 2400 MHz (20% below the run's 3000 MHz)",
                             "other processes used 1.00 cores while this unit ran"]  # fmt: skip
    assert busy["gpu_slowdowns"] == ["hw thermal"]
    assert flags({"clock.min_mhz": {"min": 2800.0}}, 3000.0) == []  # under CLOCK_DROP (10 %)
    assert counter_at(samples, "gpu0.energy_j", 20.0) is None


def test_flags_mark_the_row_without_touching_its_workload_window():
    window = {"flagged": False, "reasons": []}
    row = {"contention": window, "monitor": {"flags": ["CPU clock dropped"]}}
    apply_flags(row)
    assert row["contention"]["flagged"] and row["contention"]["row_reasons"] == ["CPU clock dropped"]
    assert window == {"flagged": False, "reasons": []}


def test_timeline_breaks_between_bursts():
    timeline = unit_timeline(_samples(), [(0.5, 1.5), (4.5, 5.5)], start=0.0)
    assert timeline["t"] == [1.0, 1.5, 5.0, 5.5]
    assert timeline["series"]["clock.min_mhz"] == [3000.0, None, 3000.0, None]


def test_bench_with_monitor_writes_timelines(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    plan = BenchPlan(source=resolve(str(tiny_bert)), units=[get_unit("torch-cpu-fp32")],
                     workloads=[FixedShape(batch=1, seq=8)], cache_dir=artifact_cache, threads=1,
                     timing=TimingConfig.quick(), baseline="torch-cpu-fp32",
                     config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2},
                     measure_floor=False, quick=True, monitor=True)  # fmt: skip
    result = run_plan(plan)
    row = result["results"][0]
    assert row["monitor"]["samples"] >= 1 and "cpu.busy_pct" in row["monitor"]["readings"]
    assert "procs.own_cores" in row["monitor"]["readings"] and "clock.mean_mhz" in row["monitor"]["readings"]
    section = result["monitor"]
    assert section["interval_s"] == 0.25
    assert all(isinstance(why, str) and why for why in section["unavailable"].values())  # each missing sensor: why
    timeline = section["units"]["torch-cpu-fp32"]
    assert len(timeline["t"]) == len(timeline["series"]["cpu.busy_pct"]) >= 2
    assert any(v is not None and not math.isnan(v) for v in timeline["series"]["procs.own_cores"])
    charts = write_charts(result, tmp_path / "bench")
    assert any(c.name.endswith("-utilisation.png") for c in charts)
    report = markdown(result, charts)
    assert "## Hardware during each row (bench --monitor)" in report and "| torch-cpu-fp32 | B1 S8 |" in report
