"""Artifacts changed behind siliconlab's back (issue 24, items 6 and 11): a same-size edit with its mtime restored
is never served or reported "reused"; a remembered hash is trusted only while the file's inode, size, mtime and
ctime are unchanged; every artifact file gets the shared mode.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from siliconlab.convert import Converter
from siliconlab.convert.integrity import VERIFIED, check_files, sha256_of
from siliconlab.models import resolve
from siliconlab.units import get_unit

UNIT = "onnxruntime-cpu-fp32"


@pytest.fixture(scope="module")
def good_root(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output root with one converted artifact plus a 65 MiB file in its manifest: over the size that once
    meant "sizes only"."""
    out = tmp_path_factory.mktemp("artifacts-root")
    outcome = Converter(resolve(str(tiny_bert)), out, threads=1).convert_unit(get_unit(UNIT))
    assert outcome.status == "converted", outcome.error
    folder = outcome.artifact_dir
    big = folder / "padding.bin"
    big.write_bytes(os.urandom(65 * 2**20))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["padding.bin"] = {"bytes": big.stat().st_size, "sha256": sha256_of(big)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return out


def _copy(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    shutil.copytree(root, out, symlinks=True)
    folder = next(out.glob(f"*/{UNIT}"))
    return out, folder


def _tamper_keeping_size_and_mtime(path: Path) -> None:
    """What `cp -p` of a same-size file does: other bytes, same size, the old mtime restored."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_tampered_large_artifact_is_rebuilt_not_reused(tiny_bert: Path, good_root: Path, tmp_path: Path) -> None:
    out, folder = _copy(good_root, tmp_path)
    source = resolve(str(tiny_bert))
    assert Converter(source, out, threads=1).convert_unit(get_unit(UNIT)).status == "cached"
    _tamper_keeping_size_and_mtime(folder / "model.onnx")
    outcome = Converter(source, out, threads=1).convert_unit(get_unit(UNIT))
    assert outcome.status == "converted" and "model.onnx: content changed" in outcome.notice


def test_load_never_serves_a_tampered_artifact(tiny_bert: Path, good_root: Path, tmp_path: Path) -> None:
    from siliconlab.tasks import load

    out, folder = _copy(good_root, tmp_path)
    expected = load(str(tiny_bert), unit=UNIT, cache=out).encode(["a sentence to embed"])
    _tamper_keeping_size_and_mtime(folder / "model.onnx")
    served = load(str(tiny_bert), unit=UNIT, cache=out).encode(["a sentence to embed"])
    assert (served == expected).all()  # rebuilt from the source: the same answer, not the tampered graph's


def test_a_remembered_hash_holds_only_while_the_file_is_untouched(
    good_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import siliconlab.convert.integrity as integrity

    _, folder = _copy(good_root, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert check_files(folder, manifest).ok
    assert not (folder / VERIFIED).exists()  # files copied seconds ago are not remembered yet
    monkeypatch.setattr(integrity, "RACY_NS", 0)
    assert check_files(folder, manifest).ok and "padding.bin" in json.loads((folder / VERIFIED).read_text())
    hashed: list[str] = []
    real = integrity.sha256_of
    monkeypatch.setattr(integrity, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    assert check_files(folder, manifest).ok and hashed == []  # all remembered: stat only
    os.utime(folder / "padding.bin")  # touched: ctime moves, so it is read again (and still fine)
    assert check_files(folder, manifest).ok and hashed == ["padding.bin"]
    _tamper_keeping_size_and_mtime(folder / "padding.bin")
    report = check_files(folder, manifest)
    assert not report.ok and "padding.bin: content changed" in report.summary()
    stale = json.loads((folder / VERIFIED).read_text())  # the entry for the file's old identity
    assert check_files(folder, manifest, verify=True).summary() == report.summary()
    assert stale == json.loads((folder / VERIFIED).read_text())  # nothing remembered after a failure


def test_a_read_only_store_is_checked_every_time(good_root: Path, tmp_path: Path, monkeypatch) -> None:
    import siliconlab.convert.integrity as integrity

    _, folder = _copy(good_root, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())

    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(integrity, "write_json_atomic", refuse)
    assert check_files(folder, manifest).ok and not (folder / VERIFIED).exists()


def test_every_artifact_file_gets_the_shared_mode(tiny_bert: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        outcome = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(get_unit("torch-cpu-fp32"))
    finally:
        os.umask(old)
    assert outcome.status == "converted", outcome.error
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in outcome.artifact_dir.rglob("*")}
    assert "model.safetensors" in modes
    assert all(mode in (0o644, 0o755) for mode in modes.values()), modes
    assert modes["model.safetensors"] == 0o644


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", '{"model.onnx": "trust me"}', '{"model.onnx": [1, 2]}'])
def test_a_garbled_verified_file_means_hashing_again(good_root: Path, tmp_path: Path, garbage: str) -> None:
    _, folder = _copy(good_root, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / VERIFIED).write_text(garbage)
    _tamper_keeping_size_and_mtime(folder / "model.onnx")
    assert "model.onnx: content changed" in check_files(folder, manifest).summary()


def test_a_manifest_naming_files_outside_the_folder_is_a_defect(good_root: Path, tmp_path: Path) -> None:
    _, folder = _copy(good_root, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    record = {"bytes": 1, "sha256": sha256_of(outside)}
    manifest["files"] |= {"../../../outside.bin": record, str(outside): record}
    report = check_files(folder, manifest)
    assert not report.ok and report.summary().count("not a path inside the artifact folder") == 2


def test_a_file_added_to_an_artifact_is_a_change(tiny_bert: Path, good_root: Path, tmp_path: Path) -> None:
    """A re-test dropped a special_tokens_map.json swapping [CLS] and [SEP] into a unit folder: load() tokenized
    with it and convert said "reused". A file the manifest does not list now means: rebuild."""
    out, folder = _copy(good_root, tmp_path)
    (folder / "special_tokens_map.json").write_text(json.dumps({"cls_token": "[SEP]", "sep_token": "[CLS]"}))
    report = check_files(folder, json.loads((folder / "manifest.json").read_text()))
    assert not report.ok and "special_tokens_map.json: not in the manifest" in report.problems[0]
    outcome = Converter(resolve(str(tiny_bert)), out, threads=1).convert_unit(get_unit(UNIT))
    assert outcome.status == "converted" and "not in the manifest" in outcome.notice
    assert not (outcome.artifact_dir / "special_tokens_map.json").exists()
