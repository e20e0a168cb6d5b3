"""Bench method: statistics against known distributions, floors, isolation, schema, compare, charts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench_units import HangingTorch, RaisingTorch, SegfaultingTorch
from typer.testing import CliRunner

from siliconlab.bench.charts import write_charts
from siliconlab.bench.floor import encoder_flops, measure_floors
from siliconlab.bench.report import load_result, markdown, result_paths, write_result
from siliconlab.bench.runner import BenchPlan, Events, add_speedups, run_plan
from siliconlab.bench.stats import median_ci_ranks, summarize_ms
from siliconlab.bench.timing import TimingConfig, measure
from siliconlab.bench.workloads import fixed_grid, text_batches
from siliconlab.cli import app
from siliconlab.models import resolve
from siliconlab.units import get_unit

TINY_CONFIG = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}


# --- statistics -------------------------------------------------------------------------------------------
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


def test_speedup_is_relative_to_the_baseline_on_the_same_shape():
    rows = [
        {"unit": "base", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 10.0}},
        {"unit": "fast", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 2.5}},
        {"unit": "fast", "workload": "fixed", "batch": 2, "seq": 8, "latency_ms": {"p50": 4.0}},
    ]
    add_speedups(rows, "base")
    assert [r["speedup"] for r in rows] == [1.0, 4.0, None]


# --- floor and FLOPs --------------------------------------------------------------------------------------
def test_bert_base_flops_from_config():
    config = resolve("bert-base").config
    # 12 layers x (128 tokens x (4*768^2 + 2*768*3072) + 2*128^2*768) multiply-adds, x2 FLOPs
    assert encoder_flops(config, 1, 128) == 22_347_251_712
    assert encoder_flops(config, 8, 128) == 8 * encoder_flops(config, 1, 128)


def test_cpu_floor_probes_measure_real_rates():
    floors = measure_floors({"cpu"}, threads=1, quick=True)
    assert floors["cpu-fp32"]["gflops"] > 0.5 and floors["cpu-int8"]["gflops"] > 0.5


# --- workloads ----------------------------------------------------------------------------------------------
def test_text_batches_pad_only_to_their_own_longest():
    tokenizer = resolve("minilm").load().tokenizer
    texts = ["short one", "a much longer sentence with many more words in it", "tiny", "also short"]
    batches = text_batches(tokenizer, texts, 2, 512)
    assert len(batches) == 2
    for ids, mask in batches:
        assert ids.shape[1] == mask.sum(axis=1).max()


def test_fixed_grid_rejects_too_long_sequences():
    from siliconlab.errors import UsageError

    with pytest.raises(UsageError, match="maximum of 128"):
        fixed_grid([1], [16, 256], 128)


# --- isolation, schema, Ctrl-C ---------------------------------------------------------------------------
def _plan(tiny_bert: Path, cache: Path, units, workloads=None) -> BenchPlan:
    return BenchPlan(
        source=resolve(str(tiny_bert)),
        units=units,
        workloads=workloads or [{"kind": "fixed", "batch": 1, "seq": 8}, {"kind": "fixed", "batch": 2, "seq": 8}],
        cache_dir=cache,
        threads=1,
        timing=TimingConfig.quick(),
        baseline="torch-cpu-fp32",
        config=TINY_CONFIG,
        measure_floor=False,
        quick=True,
    )


def test_crashing_units_are_reported_and_the_rest_finish(tiny_bert: Path, artifact_cache: Path):
    plan = _plan(tiny_bert, artifact_cache, [SegfaultingTorch(), RaisingTorch(), get_unit("onnxruntime-cpu-fp32")])
    result = run_plan(plan)
    errors = [f["error"] for f in result["failures"]]
    assert len(errors) == 2
    assert any("signal 11" in e for e in errors)  # died mid-burst (interleaved) or mid-timing (in turn)
    assert any("device fell off the bus" in e for e in errors)  # raised while loading
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2
    assert all(r["speedup"] is None for r in result["results"])  # the baseline died: no ratio is invented
    assert errors and result["complete"]


def test_a_hung_unit_is_killed_and_reported(tiny_bert: Path, artifact_cache: Path):
    plan = _plan(tiny_bert, artifact_cache, [HangingTorch(), get_unit("onnxruntime-cpu-fp32")])
    plan.unit_timeout_s = 15.0  # a workload's first burst may take this long
    result = run_plan(plan)
    assert len(result["failures"]) == 1 and "did not answer in time" in result["failures"][0]["error"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2


def test_sequential_timing_still_isolates_crashes(tiny_bert: Path, artifact_cache: Path):
    plan = _plan(tiny_bert, artifact_cache, [SegfaultingTorch(), get_unit("onnxruntime-cpu-fp32")])
    plan.interleave = False
    result = run_plan(plan)
    assert "signal 11" in result["failures"][0]["error"] and "in turn" in result["settings"]["isolation"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2
    assert all("rounds" not in r for r in result["results"])


def test_interleaved_rounds_give_paired_speedups(tiny_bert: Path, artifact_cache: Path):
    from siliconlab.bench.runner import ROUNDS

    plan = _plan(tiny_bert, artifact_cache, [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")])
    result = run_plan(plan)
    assert "interleaved" in result["settings"]["isolation"]
    rows = {(r["unit"], r["batch"]): r for r in result["results"]}
    assert len(rows) == 4
    for row in rows.values():  # every unit got the same number of bursts per workload, and enough samples
        assert row["rounds"]["count"] >= ROUNDS and len(row["rounds"]["p50_ms"]) == row["rounds"]["count"]
        assert row["iterations"] >= plan.timing.min_iters
    for batch in (1, 2):
        base, other = rows[("torch-cpu-fp32", batch)], rows[("onnxruntime-cpu-fp32", batch)]
        assert base["rounds"]["count"] == other["rounds"]["count"]
        spread = other["speedup_rounds"]
        assert spread["min"] <= spread["median"] <= spread["max"] and spread["min"] > 0
        assert base["speedup_rounds"] == {"min": 1.0, "median": 1.0, "max": 1.0}


def test_schema_round_trip_and_report(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    plan = _plan(tiny_bert, artifact_cache, [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")])
    plan.workloads = [{"kind": "fixed", "batch": b, "seq": s} for s in (8, 16) for b in (1, 2)]
    result = run_plan(plan)
    paths = result_paths(result, tmp_path)
    write_result(result, paths["json"])
    loaded = load_result(paths["json"])
    assert loaded == json.loads(json.dumps(result))
    assert loaded["schema"] == "siliconlab.bench/2" and loaded["machine"]["cores_logical"] >= 1
    for row in loaded["results"]:
        for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max", "p50_ci_low", "p50_ci_high"):
            assert key in row["latency_ms"]
        assert row["iterations"] >= 10 and row["peak_rss_mb"] > 10 and row["cold_ms"] > 0 and row["load_s"] > 0
        assert row["throughput"]["tokens_per_s"] > 0 and row["gflops_per_s"] > 0
        assert row["energy"]["joules_per_sequence"] is None or row["energy"]["joules_per_sequence"] > 0
    charts = write_charts(loaded, paths["charts"])
    assert len(charts) == 3 and all(c.stat().st_size > 5000 for c in charts)
    text = markdown(loaded, charts)
    assert "| torch-cpu-fp32 |" in text and "latency.png" in text


def test_interrupt_keeps_finished_rows(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    plan = _plan(tiny_bert, artifact_cache, [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")])
    path = tmp_path / "partial.json"

    def on_row(row):
        raise KeyboardInterrupt

    events = Events(on_row=on_row, on_checkpoint=lambda result: write_result(result, path))
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, events)
    partial = load_result(path)
    assert len(partial["results"]) == 1 and partial["complete"] is False


# --- compare ----------------------------------------------------------------------------------------------
def _result(p50: float, spread: float) -> dict:
    row = {
        "unit": "u",
        "workload": "fixed",
        "batch": 1,
        "seq": 8,
        "latency_ms": {"p50": p50, "p50_ci_low": p50 - spread, "p50_ci_high": p50 + spread},
    }
    return {"schema": "siliconlab.bench/2", "machine": {"cpu": "x"}, "results": [row]}


@pytest.mark.parametrize(
    "after,spread,code",
    [(10.5, 0.2, 0), (13.0, 0.2, 1), (13.0, 2.0, 0), (8.0, 0.2, 0)],
    ids=["small-change", "regression", "within-spread", "faster"],
)
def test_compare_exit_code(tmp_path: Path, after: float, spread: float, code: int):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result(10.0, spread)))
    b.write_text(json.dumps(_result(after, spread)))
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--threshold", "0.1"])
    assert result.exit_code == code, result.output


def test_compare_rejects_a_non_result(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(app, ["compare", str(bad), str(bad)])
    assert result.exit_code == 1 and "not a siliconlab bench result" in result.stderr
