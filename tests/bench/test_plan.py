"""build_plan: what the CLI's options turn into (baseline added, unavailable units skipped, bad input refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.bench.plan import BenchOptions, build_plan
from siliconlab.bench.workloads import BudgetSearch, FixedShape, TextStream
from siliconlab.errors import UsageError
from siliconlab.units import get_unit
from siliconlab.units.base import Availability


def test_baseline_is_added_first_and_the_grid_is_built(tiny_bert: Path, tmp_path: Path):
    options = BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="onnxruntime-cpu-fp32", batches=(1, 2),
                           seqs=(8, 16), threads=1, quick=True, min_iters=4)  # fmt: skip
    plan = build_plan(options)
    assert [u.name for u in plan.units] == ["torch-cpu-fp32", "onnxruntime-cpu-fp32"]
    assert plan.workloads == [FixedShape(1, 8), FixedShape(2, 8), FixedShape(1, 16), FixedShape(2, 16)]
    assert plan.config == {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
    assert plan.threads == 1 and plan.timing.min_iters == 4 and plan.timing.min_seconds == 0.5  # quick, overridden
    assert plan.interleaved and plan.skipped == {} and plan.cache_dir == tmp_path


def test_a_named_baseline_is_not_added_twice(tiny_bert: Path, tmp_path: Path):
    plan = build_plan(BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="torch-cpu-fp32", seqs=(8,)))
    assert [u.name for u in plan.units] == ["torch-cpu-fp32"] and not plan.interleaved  # one unit: nothing to pair


def test_all_units_skips_those_that_cannot_be_timed_here(tiny_bert: Path, tmp_path: Path, monkeypatch):
    unit_class = type(get_unit("onnxruntime-cpu-fp32"))
    monkeypatch.setattr(unit_class, "timing_availability", lambda self: Availability.no("timings would mislead"))
    plan = build_plan(BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="all", seqs=(8,)))
    assert plan.skipped["onnxruntime-cpu-fp32"] == "timings would mislead"
    assert all(u.timing_availability().ok for u in plan.units) and plan.units[0].name == "torch-cpu-fp32"
    named = build_plan(BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="onnxruntime-cpu-fp32", seqs=(8,)))
    assert "onnxruntime-cpu-fp32" in [u.name for u in named.units] and named.skipped == {}  # named: timed anyway


def test_text_and_budget_options_choose_the_workload(tiny_bert: Path, tmp_path: Path):
    common = {"cache_dir": tmp_path, "model": str(tiny_bert), "units": "torch-cpu-fp32,onnxruntime-cpu-fp32"}
    text = build_plan(BenchOptions(**common, text="a fine film .", batches=(1,)))
    assert text.workloads == [TextStream(batch=1, texts=("a fine film .",))]
    budget = build_plan(BenchOptions(**common, budget_ms=20.0, seqs=(8,), interleave=True))
    assert budget.workloads == [BudgetSearch(seq=8, budget_ms=20.0)] and not budget.interleaved


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"workload": "images"}, "--workload must be 'fixed' or 'text'"),
        ({"workload": "text", "texts": 0}, "--texts must be >= 1"),
        ({"min_iters": 0}, "--min-iters must be >= 1"),
        ({"min_seconds": -1.0}, "--min-seconds"),
        ({"threads": 0}, "--threads must be >= 1"),
        ({"seqs": (4096,)}, "longer than the model's maximum"),
        ({"budget_ms": -5.0}, "--budget-ms must be positive"),
        ({"units": "torch-cpu-fp32,warp-drive"}, "unknown unit 'warp-drive'"),
        ({"text": "   "}, "is empty"),
    ],
)
def test_bad_options_are_one_usage_error(tiny_bert: Path, tmp_path: Path, bad: dict, message: str):
    with pytest.raises(UsageError, match=message):
        build_plan(BenchOptions(**{"cache_dir": tmp_path, "model": str(tiny_bert), "units": "torch-cpu-fp32"} | bad))


def test_a_text_stream_is_timed_for_at_least_one_whole_pass(tiny_bert: Path, tmp_path: Path):
    from siliconlab.bench.plan import BenchOptions, build_plan

    plan = build_plan(BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="torch-cpu-fp32",
                                   workload="text", texts=60, quick=True))  # fmt: skip
    assert plan.timing.min_iters >= 60


@pytest.mark.skipif(__import__("sys").platform == "darwin", reason="CoreML runs on macOS: nothing to refuse there")
def test_a_named_unit_that_cannot_run_here_is_refused_before_any_work(tiny_bert: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="cannot time here — coreml-ane: CoreML prediction needs macOS"):
        build_plan(BenchOptions(cache_dir=tmp_path, model=str(tiny_bert), units="coreml-ane,torch-cpu-fp32"))
    assert not any(tmp_path.iterdir()), "nothing converted"


def test_a_generative_model_plans_generation_workloads_and_honours_the_timing_options(tmp_path: Path):
    from siliconlab.bench.workloads import Generation

    options = BenchOptions(cache_dir=tmp_path, model="gpt2", units="onnxruntime-cpu-fp32", batches=(2, 4), seqs=(64,),
                           warmup=2, min_iters=5, min_seconds=0.25, monitor=True, omp_wait_policy="passive",
                           threads=1, interleave=False)  # fmt: skip
    plan = build_plan(options)
    assert plan.kind == "decoder" and [u.name for u in plan.units] == ["torch-cpu-fp32", "onnxruntime-cpu-fp32"]
    assert all(u.kind == "decoder" for u in plan.units)  # the decoder registry's units, baseline first
    assert plan.workloads == [Generation(1, 64, 1), Generation(2, 32, 128), Generation(4, 32, 128)]
    assert (plan.timing.warmup_iters, plan.timing.min_iters, plan.timing.min_seconds) == (2, 5, 0.25)
    assert plan.monitor and not plan.interleaved and not plan.measure_floor and plan.config == {}
    assert plan.process_env == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    default = build_plan(BenchOptions(cache_dir=tmp_path, model="gpt2", units="torch-cpu-fp32", quick=True))
    assert [(w.batch, w.prompt_tokens, w.new_tokens) for w in default.workloads] == [
        (1, 32, 1),
        (1, 256, 1),
        (1, 32, 32),
        (8, 32, 32),
    ]  # a 1024-token prompt leaves no room in gpt2's context
    assert default.timing.min_iters == 3 and not any(tmp_path.iterdir()), "planning converts nothing"
