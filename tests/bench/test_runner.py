"""The timing loop: crash and hang isolation, interleaved rounds, sequential = the same loop one unit at a time,
convert-or-reuse once per unit, the result schema, and Ctrl-C keeping finished rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_units import CountingTorch, HangingTorch, RaisingTorch, SegfaultingTorch

from siliconlab.bench.charts import write_charts
from siliconlab.bench.plan import BenchPlan
from siliconlab.bench.process import death_message
from siliconlab.bench.report import load_result, markdown, result_paths, write_result
from siliconlab.bench.runner import ROUNDS, Events, _Session, burst_command, run_plan
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import BudgetSearch, FixedShape
from siliconlab.models import resolve
from siliconlab.units import get_unit

TINY_CONFIG = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
#: Every field of a fixed-shape row in siliconlab.bench/5 when units are timed interleaved against a baseline.
ROW_FIELDS = {
    "workload", "batch", "seq", "tokens_per_sequence", "latency_ms", "iterations", "cold_ms", "throughput",
    "gflops_per_s", "flops_per_batch", "energy", "peak_rss_mb", "gpu_memory_mb", "rounds", "index", "unit",
    "load_s", "model", "precision", "compute_precision", "device", "workload_label", "parity", "speedup",
    "speedup_rounds", "floor_gflops", "pct_of_floor", "contention", "executed_precision", "floor_precision",
}  # fmt: skip


def _plan(tiny_bert: Path, cache: Path, units, **overrides) -> BenchPlan:
    settings = {
        "source": resolve(str(tiny_bert)),
        "units": units,
        "workloads": [FixedShape(batch=1, seq=8), FixedShape(batch=2, seq=8)],
        "cache_dir": cache,
        "threads": 1,
        "timing": TimingConfig.quick(),
        "baseline": "torch-cpu-fp32",
        "config": TINY_CONFIG,
        "measure_floor": False,
        "quick": True,
    }
    return BenchPlan(**(settings | overrides))


def test_death_message_says_how_the_process_ended():
    assert death_message("serve", -11, False, "boom") == "unit process (serve) killed by signal 11: boom"
    assert death_message("convert", 1, False, "x") == "unit process (convert) exited with 1: x"
    assert "did not answer in time" in death_message("serve", -9, True, "no output")
    assert len(death_message("serve", 1, False, "e" * 1000)) == 400


def test_a_unit_timed_alone_gets_the_full_timing_in_one_burst():
    timing = TimingConfig.quick()
    alone = burst_command(3, timing, rounds=1)
    assert alone == {"cmd": "burst", "index": 3, "seconds": timing.min_seconds, "min_iters": timing.min_iters,
                     "max_seconds": timing.max_seconds}  # fmt: skip
    sliced = burst_command(3, timing, rounds=ROUNDS)
    assert sliced["seconds"] == pytest.approx(timing.min_seconds / ROUNDS) and sliced["min_iters"] * ROUNDS >= 10


def test_crashing_units_are_reported_and_the_rest_finish(tiny_bert: Path, artifact_cache: Path):
    plan = _plan(tiny_bert, artifact_cache, [SegfaultingTorch(), RaisingTorch(), get_unit("onnxruntime-cpu-fp32")])
    result = run_plan(plan)
    errors = [f["error"] for f in result["failures"]]
    assert len(errors) == 2
    assert any("signal 11" in e for e in errors)  # died converting (parity) or mid-burst
    assert any("device fell off the bus" in e for e in errors)  # raised while loading
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2
    assert all(r["speedup"] is None for r in result["results"])  # the baseline died: no ratio is invented
    assert result["complete"]


def test_a_hung_unit_is_killed_and_reported(tiny_bert: Path, artifact_cache: Path):
    units = [HangingTorch(), get_unit("onnxruntime-cpu-fp32")]
    result = run_plan(_plan(tiny_bert, artifact_cache, units, unit_timeout_s=15.0))  # a first burst may take this
    assert len(result["failures"]) == 1 and "did not answer in time" in result["failures"][0]["error"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2


def test_sequential_timing_still_isolates_crashes(tiny_bert: Path, artifact_cache: Path):
    units = [SegfaultingTorch(), get_unit("onnxruntime-cpu-fp32")]
    result = run_plan(_plan(tiny_bert, artifact_cache, units, interleave=False))
    assert "signal 11" in result["failures"][0]["error"] and "in turn" in result["settings"]["isolation"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2
    assert all("rounds" not in r for r in result["results"])


def test_sequential_is_the_interleaved_loop_one_unit_at_a_time_and_converts_once(
    tiny_bert: Path, artifact_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    groups: list[tuple[int, list[str]]] = []
    time_workload = _Session.time_workload

    def spy(self, index, group):
        groups.append((index, [timed.unit.name for timed in group]))
        return time_workload(self, index, group)

    monkeypatch.setattr(_Session, "time_workload", spy)
    log = tmp_path / "convert.log"
    monkeypatch.setenv("SILICONLAB_TEST_CONVERT_LOG", str(log))
    both = ["torch-cpu-fp32", "onnxruntime-cpu-fp32"]
    rows = {}
    for interleave in (True, False):
        groups.clear()
        log.unlink(missing_ok=True)
        plan = _plan(tiny_bert, artifact_cache, [CountingTorch(), get_unit("onnxruntime-cpu-fp32")],
                     interleave=interleave)  # fmt: skip
        result = run_plan(plan)
        assert not result["failures"]
        assert len(set(log.read_text().split())) == 1  # the counting unit was converted or reused in one process
        rows[interleave] = {(r["unit"], r["batch"]): r for r in result["results"]}
        if interleave:
            assert groups == [(0, both), (1, both)]
        else:
            assert groups == [(0, both[:1]), (1, both[:1]), (0, both[1:]), (1, both[1:])]
    assert rows[True].keys() == rows[False].keys()
    for key, interleaved in rows[True].items():
        sequential = rows[False][key]
        assert set(interleaved) - {"rounds", "speedup_rounds"} == set(sequential)
        assert sequential["iterations"] >= plan.timing.min_iters and sequential["speedup"] > 0
        assert interleaved["rounds"]["count"] >= ROUNDS


def test_interleaved_rounds_give_paired_speedups(tiny_bert: Path, artifact_cache: Path):
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


def test_budget_search_reports_the_largest_batch_within_budget(tiny_bert: Path, artifact_cache: Path):
    plan = _plan(tiny_bert, artifact_cache, [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")],
                 workloads=[BudgetSearch(seq=8, budget_ms=10_000.0, max_batch=2)])  # fmt: skip
    result = run_plan(plan)
    assert "in turn" in result["settings"]["isolation"]
    assert result["settings"]["workloads"] == [{"kind": "budget", "seq": 8, "budget_ms": 10_000.0, "max_batch": 2}]
    for row in result["results"]:
        assert row["workload"] == "budget" and row["workload_label"] == "budget 10000 ms S8"
        assert row["within_budget"] and row["batch"] == 2 and [s["batch"] for s in row["searched"]] == [1, 2]
        assert row["budget_ms"] == 10_000.0 and row["speedup"] > 0 and "rounds" not in row


def test_schema_round_trip_and_report(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    workloads = [FixedShape(batch=b, seq=s) for s in (8, 16) for b in (1, 2)]
    units = [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")]
    result = run_plan(_plan(tiny_bert, artifact_cache, units, workloads=workloads))
    paths = result_paths(result, tmp_path)
    write_result(result, paths["json"])
    loaded = load_result(paths["json"])
    assert loaded == json.loads(json.dumps(result))
    assert loaded["schema"] == "siliconlab.bench/5" and loaded["machine"]["cores_logical"] >= 1
    assert loaded["settings"]["workloads"][0] == {"kind": "fixed", "batch": 1, "seq": 8}
    for row in loaded["results"]:
        assert set(row) == ROW_FIELDS
        assert row["workload"] == "fixed" and row["workload_label"] == f"B{row['batch']} S{row['seq']}"
        for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max", "p50_ci_low", "p50_ci_high"):
            assert key in row["latency_ms"]
        assert row["iterations"] >= 10 and row["peak_rss_mb"] > 10 and row["cold_ms"] > 0 and row["load_s"] > 0
        assert row["throughput"]["tokens_per_s"] > 0 and row["gflops_per_s"] > 0
        assert row["energy"]["joules_per_sequence"] is None or row["energy"]["joules_per_sequence"] > 0
    charts = write_charts(loaded, paths["charts"])
    assert len(charts) == 3 and all(c.stat().st_size > 5000 for c in charts)
    text = markdown(loaded, charts)
    # "torch-cpu-fp32 !" when the row was measured under contention (another job on this machine): still its row
    assert re.search(r"\| torch-cpu-fp32( !)? \|", text) and "latency.png" in text and "## Machine load" in text


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


def test_failure_lines_carry_the_message_not_the_exception_class_path():
    from siliconlab.bench.process import death_message, plain_error

    line = "onnxruntime.capi.onnxruntime_pybind11_state.Fail: [ONNXRuntimeError] : Load model failed"
    assert plain_error(line) == "[ONNXRuntimeError] : Load model failed"
    assert plain_error("siliconlab.errors.SiliconlabError: artifact corrupt") == "artifact corrupt"
    assert plain_error("error: keep a plain message as it is") == "error: keep a plain message as it is"
    assert "capi" not in death_message("serve", 1, False, line)


def test_every_unit_is_measured_on_the_same_texts(tiny_bert: Path, artifact_cache: Path):
    """A stream is timed in whole passes: a slower unit is not judged on a shorter prefix of the texts."""
    import dataclasses

    from siliconlab.bench.workloads import TextStream
    from siliconlab.data import real_text_stream

    texts = tuple(real_text_stream(12, seed=3))
    timing = dataclasses.replace(TimingConfig.quick(), min_iters=len(texts))
    units = [get_unit("torch-cpu-fp32"), get_unit("onnxruntime-cpu-fp32")]
    result = run_plan(_plan(tiny_bert, artifact_cache, units, workloads=[TextStream(batch=1, texts=texts)],
                            timing=timing))  # fmt: skip
    rows = result["results"]
    assert len(rows) == 2 and all(row["stream_passes"] >= 1 for row in rows)
    assert rows[0]["tokens_per_sequence"] == rows[1]["tokens_per_sequence"]
    assert all(row["iterations"] % len(texts) == 0 for row in rows)
