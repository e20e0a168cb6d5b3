"""Timing and statistics: known distributions, speedup arithmetic, and a crashing unit not ending the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.bench.runner import add_speedups, run_bench
from siliconlab.bench.stats import summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.models import resolve
from siliconlab.units import get_unit
from siliconlab.units.torch_cpu import TorchCpuFp32


def test_percentiles_of_a_uniform_ramp():
    stats = summarize_ms(np.arange(1, 101) / 1e3)  # 1..100 ms
    assert stats["min"] == 1 and stats["max"] == 100
    assert stats["p50"] == pytest.approx(50.5) and stats["p90"] == pytest.approx(90.1)
    assert stats["mean"] == pytest.approx(50.5) and stats["std"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_statistics_of_a_normal_sample():
    rng = np.random.default_rng(0)
    stats = summarize_ms(rng.normal(10, 1, 100_000) / 1e3)
    assert stats["p50"] == pytest.approx(10, abs=0.02)
    assert stats["p90"] == pytest.approx(10 + 1.2816, abs=0.03)
    assert stats["p99"] == pytest.approx(10 + 2.3263, abs=0.05)
    assert stats["std"] == pytest.approx(1, abs=0.02)


def test_measure_meets_both_minimum_count_and_time():
    calls = []
    samples = measure(lambda: calls.append(1), lambda: None, TimingConfig(1, 0.0, 7, 0.05, 5.0))
    assert samples.size >= 7 and samples.sum() >= 0 and len(calls) > samples.size  # warm-up not in samples


def test_speedup_is_relative_to_the_baseline_on_the_same_shape():
    rows = [
        {"unit": "base", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 10.0}},
        {"unit": "fast", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 2.5}},
        {"unit": "fast", "workload": "fixed", "batch": 2, "seq": 8, "latency_ms": {"p50": 4.0}},
    ]
    add_speedups(rows, "base")
    assert [r["speedup"] for r in rows] == [1.0, 4.0, None]


def test_a_crashing_unit_is_reported_and_the_others_finish(tiny_bert: Path, artifact_cache: Path):
    class Crashing(TorchCpuFp32):
        def load(self, artifact_dir, threads):
            runner = super().load(artifact_dir, threads)

            def explode(ids, mask):
                raise RuntimeError("device fell off the bus")

            runner.run = explode
            return runner

    units = [Crashing(), get_unit("onnxruntime-cpu-fp32")]
    result = run_bench(
        resolve(str(tiny_bert)), units, [1], [8], artifact_cache, 1, TimingConfig.quick(), "torch-cpu-fp32"
    )
    assert [f["unit"] for f in result["failures"]] == ["torch-cpu-fp32"]
    assert "device fell off the bus" in result["failures"][0]["error"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"]
    assert result["results"][0]["speedup"] is None  # the baseline crashed: no ratio is invented
