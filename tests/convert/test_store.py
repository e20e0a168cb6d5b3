"""The artifact store: last-use stamps, `cache ls` and `cache prune` (filters, dry run, exit codes)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.convert import Converter, load_artifact
from siliconlab.errors import UsageError
from siliconlab.models import resolve
from siliconlab.store import LAST_USED, list_cache, prune, select_for_prune
from siliconlab.units import get_unit

UNIT = "onnxruntime-cpu-fp32"
DAY = 86400
cli = CliRunner()


def _fake_artifact(root: Path, model: str, unit: str, age_days: float, size: int = 1000) -> Path:
    folder = root / model / unit
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"unit": unit}))
    (folder / "weights.bin").write_bytes(b"\0" * size)
    stamp = folder / LAST_USED
    stamp.touch()
    old = time.time() - age_days * DAY
    os.utime(stamp, (old, old))
    return folder


def test_reuse_and_load_stamp_last_use(converted: Path, tiny_model: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(converted, out)
    folder = out / "tiny-bert" / UNIT
    stamp = folder / LAST_USED
    old = time.time() - 30 * DAY
    os.utime(stamp, (old, old))
    [entry] = list_cache(out)
    assert (entry.model, entry.unit, entry.complete) == ("tiny-bert", UNIT, True)
    assert 29.9 < entry.age_days < 30.1 and entry.bytes > 1_000_000
    assert Converter(resolve(str(tiny_model)), out, threads=1).convert_unit(get_unit(UNIT)).status == "cached"
    assert list_cache(out)[0].age_days < 0.01
    os.utime(stamp, (old, old))
    load_artifact(folder, get_unit(UNIT), threads=1)
    assert list_cache(out)[0].age_days < 0.01


def test_prune_filters_combine(tmp_path: Path):
    _fake_artifact(tmp_path, "minilm", "a", age_days=40)
    _fake_artifact(tmp_path, "minilm", "b", age_days=1)
    _fake_artifact(tmp_path, "owner--model", "a", age_days=40)
    entries = list_cache(tmp_path)
    names = lambda chosen: sorted(f"{e.model}/{e.unit}" for e in chosen)  # noqa: E731
    assert names(select_for_prune(entries, older_than_days=30)) == ["minilm/a", "owner--model/a"]
    assert names(select_for_prune(entries, older_than_days=30, model="owner/model")) == ["owner--model/a"]
    assert names(select_for_prune(entries, unit="b")) == ["minilm/b"]
    assert len(select_for_prune(entries, everything=True)) == 3
    with pytest.raises(UsageError, match="say what to prune"):
        select_for_prune(entries)
    with pytest.raises(UsageError, match="days >= 0"):
        select_for_prune(entries, older_than_days=-1)


def test_prune_removes_folders_and_empty_models(tmp_path: Path):
    _fake_artifact(tmp_path, "minilm", "a", age_days=40)
    _fake_artifact(tmp_path, "minilm", "b", age_days=1)
    (tmp_path / "minilm" / ".a.lock").touch()
    entries = list_cache(tmp_path)
    chosen = select_for_prune(entries, older_than_days=30)
    assert prune(tmp_path, chosen, dry_run=True) == chosen[0].bytes
    assert len(list_cache(tmp_path)) == 2  # a dry run removes nothing
    prune(tmp_path, chosen)
    assert [e.unit for e in list_cache(tmp_path)] == ["b"]
    prune(tmp_path, select_for_prune(list_cache(tmp_path), everything=True))
    assert list_cache(tmp_path) == [] and not (tmp_path / "minilm").exists()


def test_cache_commands(tmp_path: Path):
    _fake_artifact(tmp_path, "minilm", "onnxruntime-cpu-fp32", age_days=3, size=3 * 2**20)
    listed = cli.invoke(app, ["cache", "ls", "--cache", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "minilm" in listed.output and "onnxruntime-cpu-fp32" in listed.output and "3.0 MiB" in listed.output
    assert "(3 d ago)" in listed.output
    nothing = cli.invoke(app, ["cache", "prune", "--cache", str(tmp_path)])
    assert nothing.exit_code == 2 and "say what to prune" in nothing.output
    dry = cli.invoke(app, ["cache", "prune", "--cache", str(tmp_path), "--older-than", "2", "--dry-run"])
    assert dry.exit_code == 0 and "would remove minilm/onnxruntime-cpu-fp32" in dry.output
    assert list_cache(tmp_path)
    done = cli.invoke(app, ["cache", "prune", "--cache", str(tmp_path), "--all"])
    assert done.exit_code == 0 and "freed 3.0 MiB" in done.output
    assert "no artifacts" in cli.invoke(app, ["cache", "ls", "--cache", str(tmp_path)]).output


def test_a_model_source_copy_is_listed_and_prunable(tmp_path: Path):
    """SmolLM2's fp32 copy of its GGUF (`.sources/`) is half a gigabyte: `cache ls` shows it, prune can remove it."""
    source = tmp_path / ".sources" / "smollm2-chat-gguf-dequant-fp32-v1-123"
    source.mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "model.safetensors").write_bytes(b"\0" * 5000)
    (tmp_path / ".sources" / ".smollm2-tmp-x").mkdir()  # a conversion in progress is not an entry
    _fake_artifact(tmp_path, "minilm", UNIT, age_days=1)
    entries = list_cache(tmp_path)
    listed = {(e.model, e.unit): e for e in entries}
    assert set(listed) == {("minilm", UNIT), ("smollm2-chat", "source")}
    assert listed["smollm2-chat", "source"].bytes >= 5000 and listed["smollm2-chat", "source"].complete
    result = cli.invoke(app, ["cache", "ls", "--cache", str(tmp_path)])
    assert result.exit_code == 0 and "smollm2-chat" in result.output and "source" in result.output
    prune(tmp_path, select_for_prune(entries, model="smollm2-chat"))
    assert not source.exists() and (tmp_path / ".sources").is_dir() and (tmp_path / "minilm" / UNIT).is_dir()
