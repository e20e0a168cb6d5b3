"""manifest.json: atomic writes, and one clear line for every way an artifact folder can be broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siliconlab.convert.manifest import MANIFEST, read_manifest, write_json_atomic
from siliconlab.errors import SiliconlabError


def test_written_manifest_reads_back_and_leaves_no_temp_files(tmp_path: Path):
    folder = tmp_path / "unit"
    write_json_atomic(folder / MANIFEST, {"unit": "x", "source_hash": "abc", "when": Path("p")})
    assert read_manifest(folder) == {"unit": "x", "source_hash": "abc", "when": "p"}
    assert [p.name for p in folder.iterdir()] == [MANIFEST]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    path = tmp_path / MANIFEST
    write_json_atomic(path, {"unit": "old", "source_hash": "1"})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"unit": "new", "x": _Unwritable()})  # fails halfway through the dump
    assert json.loads(path.read_text())["unit"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]


class _Unwritable:
    """json's default=str stringifies unknown objects; this one refuses, so the dump fails after starting."""

    def __str__(self) -> str:
        raise ValueError("cannot serialize")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no artifact folder"),
        (lambda d: d.mkdir(), "has no manifest.json"),
        (lambda d: (d.mkdir(), (d / MANIFEST).write_text("{not json")), "is corrupt"),
        (lambda d: (d.mkdir(), (d / MANIFEST).write_text('{"unit": "x"}')), "is not a siliconlab manifest"),
    ],
)
def test_broken_folders_give_one_line(tmp_path: Path, setup, message: str):
    folder = tmp_path / "artifact"
    setup(folder)
    with pytest.raises(SiliconlabError, match=message) as caught:
        read_manifest(folder)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is None
