"""The CLI end to end: real subcommands on a tiny model, JSON output, and every bad input path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.units import REGISTRY

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_units_json_lists_every_unit_with_reason():
    result = invoke("units", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {row["unit"] for row in rows} == set(REGISTRY)
    assert all(row["available"] or row["reason"] for row in rows)


def test_models_json():
    result = invoke("models", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["minilm"]["default"] and not rows["minilm"]["architecture_only"]
    assert rows["bert-base"]["architecture_only"]
    assert rows["minilm"]["params"] > 0 and rows["minilm"]["size_bytes"] > 0


@pytest.mark.parametrize("command", ["units", "models", "convert", "bench"])
def test_help_is_useful(command: str):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_unknown_model_exits_2_with_choices(tmp_path: Path):
    result = invoke("convert", "not-a-model", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown model 'not-a-model'" in result.stderr and "minilm" in result.stderr
    assert "chat-retrieval" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_unit_exits_2_with_choices(tiny_bert: Path, tmp_path: Path):
    result = invoke("convert", str(tiny_bert), "--units", "torch-cpu-fp32,warp-drive", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown unit 'warp-drive'" in result.stderr and "torch-cpu-fp32" in result.stderr


def test_bad_batch_exits_2(tiny_bert: Path, tmp_path: Path):
    result = invoke("bench", str(tiny_bert), "--batch", "one", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--batch" in result.stderr


def test_seq_longer_than_model_exits_2(tiny_bert: Path, tmp_path: Path):
    result = invoke("bench", str(tiny_bert), "--seq", "4096", "--out", str(tmp_path), "--cache", str(tmp_path))
    assert result.exit_code == 2 and "maximum of 128" in result.stderr


def test_empty_text_is_rejected(tiny_bert: Path, tmp_path: Path):
    result = invoke("bench", str(tiny_bert), "--text", "  ", "--out", str(tmp_path), "--cache", str(tmp_path))
    assert result.exit_code == 2 and "empty" in result.stderr


def test_convert_then_bench_end_to_end(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    units = "torch-cpu-fp32,onnxruntime-cpu-fp32"
    result = invoke("convert", str(tiny_bert), "--units", units, "--out", str(artifact_cache))
    assert result.exit_code == 0, result.output
    manifest = json.loads((artifact_cache / tiny_bert.name / "onnxruntime-cpu-fp32" / "manifest.json").read_text())
    assert manifest["parity"]["passed"]
    out = tmp_path / "results"
    result = invoke(
        "bench",
        str(tiny_bert),
        "--units",
        units,
        "--batch",
        "1,2",
        "--seq",
        "16",
        "--quick",
        "--out",
        str(out),
        "--cache",
        str(artifact_cache),
    )
    assert result.exit_code == 0, result.output
    [path] = out.glob("bench-*.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "siliconlab.bench/5"
    rows = data["results"]
    assert {(r["unit"], r["batch"], r["seq"]) for r in rows} == {(u, b, 16) for u in units.split(",") for b in (1, 2)}
    for row in rows:
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean"}
        assert row["latency_ms"]["p50"] > 0 and row["speedup"] > 0
    assert all(r["speedup"] == pytest.approx(1.0) for r in rows if r["unit"] == "torch-cpu-fp32")


def test_bench_real_text_uses_its_natural_length(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    result = invoke(
        "bench",
        str(tiny_bert),
        "--units",
        "torch-cpu-fp32",
        "--text",
        "a genuinely moving film .",
        "--quick",
        "--out",
        str(tmp_path),
        "--cache",
        str(artifact_cache),
    )
    assert result.exit_code == 0, result.output
    [path] = tmp_path.glob("bench-*.json")
    [row] = json.loads(path.read_text())["results"]
    assert row["workload"] == "text" and 5 <= row["seq"] <= 9


def test_corrupt_artifact_is_a_clear_error(tiny_bert: Path, artifact_cache: Path, tmp_path: Path):
    from siliconlab.convert import load_artifact
    from siliconlab.errors import SiliconlabError
    from siliconlab.units import get_unit

    unit = get_unit("onnxruntime-cpu-fp32")
    invoke("convert", str(tiny_bert), "--units", unit.name, "--out", str(artifact_cache))
    broken = tmp_path / "broken"
    shutil.copytree(artifact_cache / tiny_bert.name / unit.name, broken)
    (broken / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(SiliconlabError, match="corrupt or incomplete"):
        load_artifact(broken, unit, threads=1)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(SiliconlabError, match="corrupt"):
        load_artifact(broken, unit, threads=1)
    with pytest.raises(SiliconlabError, match="no artifact folder"):
        load_artifact(tmp_path / "missing", unit, threads=1)


def test_corrupt_cached_artifact_is_rebuilt_by_bench(tiny_bert: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert invoke("convert", str(tiny_bert), "--units", "torch-cpu-fp32", "--out", str(cache)).exit_code == 0
    (cache / tiny_bert.name / "torch-cpu-fp32" / "manifest.json").write_text("][")
    result = invoke(
        "bench",
        str(tiny_bert),
        "--units",
        "torch-cpu-fp32",
        "--seq",
        "8",
        "--quick",
        "--out",
        str(tmp_path),
        "--cache",
        str(cache),
    )
    assert result.exit_code == 0, result.output


def test_console_script_runs():
    exe = Path(sys.executable).with_name("siliconlab")
    if not exe.exists():
        pytest.skip("siliconlab console script not installed in this environment")
    proc = subprocess.run([str(exe), "units", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)
    proc = subprocess.run([str(exe), "bench", "nope"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown model" in proc.stderr
