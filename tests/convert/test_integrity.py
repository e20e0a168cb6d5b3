"""Artifact integrity: the manifest's file list (size + sha256) is checked on reuse, and `siliconlab verify`."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.convert import Converter
from siliconlab.convert.integrity import check_files, sha256_of
from siliconlab.convert.manifest import write_json_atomic
from siliconlab.models import resolve
from siliconlab.units import get_unit

UNIT = "onnxruntime-cpu-fp32"


def _copy(converted: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    shutil.copytree(converted, out)
    return out, out / "tiny-bert" / UNIT


def _convert(tiny_model: Path, out: Path, verify: bool = False):
    return Converter(resolve(str(tiny_model)), out, threads=1, verify=verify).convert_unit(get_unit(UNIT))


def test_manifest_records_every_shipped_file(converted: Path):
    folder = converted / "tiny-bert" / UNIT
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema_version"] == 2
    files = manifest["files"]
    assert "model.onnx" in files and "tokenizer.json" in files
    assert "manifest.json" not in files and ".last_used" not in files
    for name, record in files.items():
        assert record["bytes"] == (folder / name).stat().st_size
        assert record["sha256"] == sha256_of(folder / name)


def test_unchanged_artifact_is_reused(tiny_model: Path, converted: Path, tmp_path: Path):
    out, _ = _copy(converted, tmp_path)
    outcome = _convert(tiny_model, out)
    assert outcome.status == "cached" and outcome.notice == ""


@pytest.mark.parametrize("damage", ["truncate", "delete", "same-size edit"])
def test_damaged_artifact_is_rebuilt_with_a_notice(tiny_model: Path, converted: Path, tmp_path: Path, damage: str):
    out, folder = _copy(converted, tmp_path)
    onnx = folder / "model.onnx"
    good = onnx.read_bytes()
    if damage == "truncate":
        onnx.write_bytes(good[: 2**20])
        expected = "model.onnx: size 1.0 MiB, expected 3.8 MiB"
    elif damage == "delete":
        onnx.unlink()
        expected = "model.onnx: missing"
    else:
        onnx.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
        expected = "model.onnx: content changed"
    outcome = _convert(tiny_model, out)
    assert outcome.status == "converted", outcome.error
    assert outcome.notice.startswith(f"artifact tiny-bert/{UNIT} changed since conversion")
    assert expected in outcome.notice and outcome.notice.endswith(": rebuilding")
    assert onnx.read_bytes() == good  # the export is deterministic: the rebuild restores the same bytes
    assert _convert(tiny_model, out).status == "cached"  # and converting again now reuses it


def test_old_manifest_without_file_list_is_rebuilt(tiny_model: Path, converted: Path, tmp_path: Path):
    out, folder = _copy(converted, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]
    manifest["schema_version"] = 1
    write_json_atomic(folder / "manifest.json", manifest)
    outcome = _convert(tiny_model, out)
    assert outcome.status == "converted"
    assert "cannot be checked" in outcome.notice and "older siliconlab" in outcome.notice


def test_large_artifacts_are_hashed_on_every_reuse(converted: Path, tmp_path: Path):
    """A same-size edit of a folder over 64 MiB (once checked by size only) is found without being asked."""
    _, folder = _copy(converted, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    big = folder / "weights.bin"
    big.write_bytes(os.urandom(65 * 2**20))
    manifest["files"]["weights.bin"] = {"bytes": big.stat().st_size, "sha256": sha256_of(big)}
    assert check_files(folder, manifest).ok
    onnx = folder / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    report = check_files(folder, manifest)
    assert not report.ok and report.hashed and "model.onnx: content changed" in report.summary()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_respect_the_umask(tiny_model: Path, tmp_path: Path):
    old = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "result.json", {"a": 1})
        assert _mode(tmp_path / "result.json") == 0o640  # mkstemp alone gives 0600
        os.umask(0o022)
        outcome = _convert(tiny_model, tmp_path / "out")
    finally:
        os.umask(old)
    assert outcome.status == "converted"
    folder = outcome.artifact_dir
    assert _mode(folder) == 0o755  # mkdtemp alone gives 0700
    for path in folder.iterdir():
        assert _mode(path) == 0o644, path.name


cli = CliRunner()


def test_verify_command_exit_codes(converted: Path, tmp_path: Path):
    out, folder = _copy(converted, tmp_path)
    for target in (folder, folder.parent, out):  # a unit folder, a model folder, an output root
        result = cli.invoke(app, ["verify", str(target), "--threads", "1"])
        assert result.exit_code == 0, result.output
        assert "1 artifact(s) verified" in result.output and "pooled cosine min" in result.output
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes()[: 2**20])
    result = cli.invoke(app, ["verify", str(out), "--no-parity"])
    assert result.exit_code == 1
    assert "model.onnx: size 1.0 MiB, expected 3.8 MiB" in result.output
    assert "have defects" in result.output
    missing = cli.invoke(app, ["verify", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = cli.invoke(app, ["verify", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no converted artifact" in empty.output


def test_verify_reports_a_corrupt_manifest_and_an_old_one(converted: Path, tmp_path: Path):
    out, folder = _copy(converted, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]
    write_json_atomic(folder / "manifest.json", manifest)
    result = cli.invoke(app, ["verify", str(folder), "--no-parity"])
    assert result.exit_code == 1 and "unverifiable" in result.output
    (folder / "manifest.json").write_text("{not json")
    result = cli.invoke(app, ["verify", str(folder)])
    assert result.exit_code == 1 and "corrupt" in result.output
