"""`siliconlab chat` and `siliconlab bench` with a generative model; the ONNX Runtime decoders' parity gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app


@pytest.fixture(autouse=True)
def _cache(artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILICONLAB_CACHE", str(artifact_cache))


def test_chat_streams_the_reply_with_its_speed(tiny_llama: Path, tiny_chat) -> None:
    result = CliRunner().invoke(app, ["chat", "--model", str(tiny_llama), "--unit", "torch-cpu-fp32",
                                      "--text", "What is the capital of France?", "--max-new-tokens", "5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bot> " in result.output
    assert "time to first token" in result.output and "tokens/s" in result.output


@pytest.mark.parametrize(("args", "message"), [(["--max-new-tokens", "0"], "max_new_tokens"),
                                               (["--text", "   "], "empty")])  # fmt: skip
def test_chat_bad_input_is_one_line(tiny_llama: Path, tiny_chat, args: list[str], message: str) -> None:
    base = ["chat", "--model", str(tiny_llama), "--unit", "torch-cpu-fp32"]
    result = CliRunner().invoke(app, base + (args if "--text" in args else [*args, "--text", "hi"]))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bench_reports_ttft_and_decode_rate(tiny_llama: Path, tmp_path: Path, artifact_cache: Path, tiny_chat) -> None:
    result = CliRunner().invoke(app, ["bench", str(tiny_llama), "--units", "torch-cpu-fp32", "--quick", "--threads",
                                      "1", "--out", str(tmp_path), "--cache", str(artifact_cache)])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(next(tmp_path.glob("bench-*.json")).read_text())
    assert document["schema"] == "siliconlab.bench/5" and document["complete"]
    rows = document["results"]
    ttft = [r for r in rows if r["new_tokens"] == 1]
    assert [r["seq"] for r in ttft] == [32]  # the tiny model's context (128) leaves out 256 and 1024
    decode = {r["batch"]: r for r in rows if r["new_tokens"] > 1}
    assert set(decode) == {1, 8}
    for row in rows:
        assert row["ttft_ms"]["p90"] >= row["ttft_ms"]["p50"] > 0 and row["peak_rss_mb"] > 0
    assert decode[8]["decode_tokens_per_s"] > 0 and decode[8]["parity"]["passed"]
    record = artifact_cache / tiny_llama.name / ".bench-latest.json"  # what unit="best" reads (tasks/best.py)
    try:
        kept = json.loads(record.read_text())
        assert kept["metric"] == "decode_tokens_per_s" and [r["unit"] for r in kept["rows"]] == ["torch-cpu-fp32"]
        assert kept["rows"][0]["decode_tokens_per_s"] == decode[1]["decode_tokens_per_s"]
    finally:
        record.unlink(missing_ok=True)  # the session's other tests see the default order


@pytest.mark.parametrize("unit", ["onnxruntime-cpu-fp32", "onnxruntime-cpu-int8", "onnxruntime-cpu-int4"])
def test_onnxruntime_decoders_pass_their_gates(tiny_llama: Path, artifact_cache: Path, unit: str) -> None:
    from siliconlab.convert.pipeline import Converter
    from siliconlab.models import resolve
    from siliconlab.units import registry

    outcome = Converter(resolve(str(tiny_llama)), artifact_cache, 1).convert_unit(registry.get("decoder", unit))
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["agreement"] >= parity["agreement_min"]
    if unit.endswith("fp32"):
        assert parity["agreement"] == 1.0 and parity["free_run_match"] == 1.0 and parity["cosine_min"] > 0.99999
    if unit.endswith("int4"):  # weight-only: every weight MatMul became a 4-bit MatMulNBits
        assert "MatMulNBits" in outcome.manifest["graph"]["quantization"]
