"""`bench` of a generative model goes through the one bench loop: worker processes under a deadline, rows saved as
they arrive, contention fields, Markdown and charts; every timing option honoured or refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_decoders import HangingDecoder
from typer.testing import CliRunner

from siliconlab.bench.plan import BenchPlan
from siliconlab.bench.report import load_result, write_result
from siliconlab.bench.runner import Events, run_plan
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import Generation
from siliconlab.cli import app
from siliconlab.models import resolve
from siliconlab.units.decoders import get_decoder_unit


def _plan(model: Path, cache: Path, units, **overrides) -> BenchPlan:
    settings = {
        "source": resolve(str(model)),
        "units": units,
        "workloads": [Generation(1, 16, 1), Generation(2, 16, 8)],
        "cache_dir": cache,
        "threads": 1,
        "timing": TimingConfig.generation(quick=True),
        "baseline": "torch-cpu-fp32",
        "config": {},
        "measure_floor": False,
        "quick": True,
        "kind": "decoder",
    }
    return BenchPlan(**(settings | overrides))


def test_bench_of_a_generative_model_writes_json_markdown_and_charts(
    tiny_llama: Path, tmp_path: Path, artifact_cache: Path
) -> None:
    args = ["bench", str(tiny_llama), "--units", "torch-cpu-fp32,onnxruntime-cpu-fp32", "--quick", "--threads", "1",
            "--batch", "2", "--seq", "16,24", "--min-iters", "4", "--warmup", "0", "--out", str(tmp_path),
            "--cache", str(artifact_cache)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document = load_result(next(tmp_path.glob("bench-*.json")))
    assert document["schema"] == "siliconlab.bench/5" and document["complete"]
    assert document["settings"]["kind"] == "decoder" and "interleaved" in document["settings"]["isolation"]
    assert document["settings"]["timing"]["min_iters"] == 4 and document["settings"]["timing"]["warmup_iters"] == 0
    assert {"before", "sampler"} <= set(document["machine_load"])
    rows = document["results"]
    assert {(r["unit"], r["workload_label"]) for r in rows} == {
        (unit, label)
        for unit in ("torch-cpu-fp32", "onnxruntime-cpu-fp32")
        for label in ("gen b1 p16 +1", "gen b1 p24 +1", "gen b2 p32 +32")  # --seq: TTFT prompts, --batch: decode
    }
    for row in rows:
        assert "flagged" in row["contention"] and row["iterations"] >= 4 and row["rounds"]["count"] >= 1
        assert row["ttft_ms"]["p90"] >= row["ttft_ms"]["p50"] > 0 and row["peak_rss_mb"] > 0
        assert row["latency_ms"]["p50"] > 0 and row["speedup"] > 0 and row["parity"]["passed"]
    decode = [r for r in rows if r["new_tokens"] > 1]
    assert all(r["decode_tokens_per_s"] > 0 and r["decode_step_ms"]["p50"] > 0 for r in decode)
    report = next(tmp_path.glob("bench-*.md")).read_text()
    assert "TTFT p50 ms" in report and "## Machine load" in report and "decode-rate.png" in report
    charts = sorted(p.name.split("Z-")[-1] for p in tmp_path.glob("*.png"))
    assert charts == ["decode-rate.png", "latency.png"]  # every row in a latency panel, decode rows also by rate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget-ms", "50"], "--budget-ms searches an encoder's batch"),
        (["--text", "hello"], "--text times one encoder input"),
        (["--texts", "10"], "--texts sizes the encoder's real-text stream"),
        (["--workload", "text"], "--workload text streams real sentences"),
        (["--floor"], "--floor holds FLOP rates"),
        (["--seq", "4096"], "--seq 4096: a prompt must leave room"),
        (["--baseline", "coreml-ane"], "unit 'coreml-ane' cannot run a generative model"),
    ],
)
def test_an_option_generation_cannot_honour_is_refused_in_one_line(
    tiny_llama: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    base = ["bench", str(tiny_llama), "--units", "torch-cpu-fp32", "--out", str(tmp_path), "--cache", str(tmp_path)]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*/torch-cpu-fp32")), "refused before converting anything"


def test_generation_rows_are_saved_as_they_arrive(tiny_llama: Path, artifact_cache: Path, tmp_path: Path) -> None:
    """Each row is on disk before the next workload is timed: Ctrl-C or a crash keeps it."""
    path, seen = tmp_path / "partial.json", []

    def on_row(row: dict) -> None:
        saved = json.loads(path.read_text())
        assert not saved["complete"]
        seen.append(len(saved["results"]))
        assert saved["results"][-1]["workload_label"] == row["workload_label"]

    events = Events(on_row=on_row, on_checkpoint=lambda result: write_result(result, path))
    result = run_plan(_plan(tiny_llama, artifact_cache, [get_decoder_unit("torch-cpu-fp32")]), events)
    assert seen == [1, 2] and result["complete"] and not result["failures"]


def test_a_hung_generation_unit_hits_the_deadline(tiny_llama: Path, artifact_cache: Path) -> None:
    units = [HangingDecoder(), get_decoder_unit("onnxruntime-cpu-fp32")]
    result = run_plan(_plan(tiny_llama, artifact_cache, units, unit_timeout_s=15.0))  # a first burst may take this
    assert len(result["failures"]) == 1 and "did not answer in time" in result["failures"][0]["error"]
    assert [r["unit"] for r in result["results"]] == ["onnxruntime-cpu-fp32"] * 2
    assert all("contention" in r for r in result["results"]) and result["machine_load"]


def test_bench_of_a_generative_model_leaves_the_ranking_that_unit_best_reads(
    tiny_llama: Path, tmp_path: Path, artifact_cache: Path
) -> None:
    """The chain a user relies on: `bench MODEL` of a decoder writes the batch-1 decode ranking, and
    `unit="best"` then tries the units in that order (not the kind's default order)."""
    import shutil

    from siliconlab.bench.machine import machine_info
    from siliconlab.convert.pipeline import model_folder_name
    from siliconlab.tasks.best import RECORD, ranked_units
    from siliconlab.units.registry import default_order

    # Its own model folder, so its record cannot rank the shared tiny llama for other tests.
    model = shutil.copytree(tiny_llama, tmp_path / "bench-ranked-llama")
    args = ["bench", str(model), "--units", "torch-cpu-fp32,onnxruntime-cpu-fp32", "--quick", "--threads", "1",
            "--batch", "1", "--seq", "16", "--min-iters", "3", "--warmup", "0", "--no-charts", "--out",
            str(tmp_path / "out"), "--cache", str(artifact_cache)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model_dir = artifact_cache / model_folder_name(resolve(str(model)))
    record = json.loads((model_dir / RECORD).read_text())
    assert record["metric"] == "decode_tokens_per_s"
    rates = {row["unit"]: row["decode_tokens_per_s"] for row in record["rows"]}
    assert set(rates) == {"torch-cpu-fp32", "onnxruntime-cpu-fp32"} and min(rates.values()) > 0
    order, why = ranked_units(model_dir, machine_info(), kind="decoder")
    stable = [row["unit"] for row in record["rows"] if row["stable"] and row["parity_passed"]]
    if stable:  # a quick bench on a busy machine may measure no stable row: then the default order, said so
        assert order == sorted(stable, key=lambda unit: -rates[unit]) and "fastest stable unit" in why
    else:
        assert order == default_order("decoder") and "no stable, parity-passing unit" in why
