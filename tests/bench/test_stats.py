"""Bench statistics against known distributions, the timing loop, FLOPs and the machine floor."""

from __future__ import annotations

import numpy as np
import pytest

from siliconlab.bench.floor import encoder_flops, measure_floors
from siliconlab.bench.stats import median_ci_ranks, summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.models import resolve


def test_percentiles_of_a_uniform_ramp():
    stats = summarize_ms(np.arange(1, 101) / 1e3)  # 1..100 ms
    assert stats["min"] == 1 and stats["max"] == 100
    assert stats["p50"] == pytest.approx(50.5) and stats["p90"] == pytest.approx(90.1)
    assert stats["mean"] == pytest.approx(50.5) and stats["std"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert (stats["p50_ci_low"], stats["p50_ci_high"]) == (40, 61)


def test_statistics_of_a_normal_sample():
    stats = summarize_ms(np.random.default_rng(0).normal(10, 1, 100_000) / 1e3)
    assert stats["p50"] == pytest.approx(10, abs=0.02)
    assert stats["p90"] == pytest.approx(10 + 1.2816, abs=0.03)
    assert stats["p95"] == pytest.approx(10 + 1.6449, abs=0.04)
    assert stats["p99"] == pytest.approx(10 + 2.3263, abs=0.05)
    assert stats["std"] == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize("n,ranks", [(10, (2, 9)), (20, (6, 15)), (30, (10, 21)), (100, (40, 61))])
def test_median_ci_ranks_match_binomial_tables(n, ranks):
    assert median_ci_ranks(n) == ranks


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    true_median = np.log(2)  # exponential(1): skewed like latency tails
    hits = 0
    for _ in range(2000):
        stats = summarize_ms(rng.exponential(1.0, 40) / 1e3)
        hits += stats["p50_ci_low"] <= true_median <= stats["p50_ci_high"]
    assert 0.93 <= hits / 2000 <= 0.995


def test_measure_excludes_warmup_and_meets_count_and_time():
    calls, started = [], []
    samples = measure(
        lambda: calls.append(1), lambda: None, TimingConfig(3, 0.0, 7, 0.05, 5.0), lambda: started.append(len(calls))
    )
    assert samples.size >= 7 and started == [len(calls) - samples.size] and started[0] >= 3


def test_bert_base_flops_from_config():
    config = resolve("bert-base").config
    # 12 layers x (128 tokens x (4*768^2 + 2*768*3072) + 2*128^2*768) multiply-adds, x2 FLOPs
    assert encoder_flops(config, 1, 128) == 22_347_251_712
    assert encoder_flops(config, 8, 128) == 8 * encoder_flops(config, 1, 128)


def test_cpu_floor_probes_measure_real_rates():
    floors = measure_floors({"cpu"}, threads=1, quick=True)
    assert floors["cpu-fp32"]["gflops"] > 0.5 and floors["cpu-int8"]["gflops"] > 0.5


def test_floors_cover_every_cpu_precision_this_machine_has():
    from siliconlab.cpu_features import detect

    floors = measure_floors({"cpu"}, threads=1, quick=True)
    assert ("cpu-bf16" in floors) == detect().bf16_native  # a bf16 floor only where bf16 is native
    for key, floor in floors.items():
        assert floor["gflops"] and floor["gflops"] > 0.5, (key, floor)
        assert floor["probe"] in floor["probes"] and floor["gflops"] == max(floor["probes"].values())


def test_rows_are_held_to_the_floor_of_what_the_engine_executed():
    from siliconlab.bench.results import add_floor_fractions

    floors = {"cpu-fp32": {"gflops": 100.0}, "cpu-bf16": {"gflops": 400.0}, "cpu-int8": {"gflops": 800.0}}
    rows = [
        {"device": "cpu", "precision": "fp32", "compute_precision": "fp32", "executed_precision": "bf16",
         "gflops_per_s": 200.0},  # an "fp32" unit that ran bf16 is held to the bf16 floor, never 200 % of fp32
        {"device": "cpu", "precision": "int8", "executed_precision": "int8 30/36, bf16 6/36",
         "gflops_per_s": 400.0},
        {"device": "cpu", "precision": "int8", "compute_precision": "fp32", "gflops_per_s": 50.0},
    ]  # fmt: skip
    add_floor_fractions(rows, floors)
    assert [r["floor_precision"] for r in rows] == ["bf16", "int8", "fp32"]
    assert [r["pct_of_floor"] for r in rows] == [50.0, 50.0, 50.0]
