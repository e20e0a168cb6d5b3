"""One artifact store: every command that loads a model reads and converts into `--cache DIR`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from siliconlab.cli import app


def test_embed_and_classify_convert_into_and_reuse_the_cache_they_are_given(
    tiny_bert: Path, tiny_classifier: Path, tmp_path: Path
):
    store = tmp_path / "store"
    args = ["--unit", "torch-cpu-fp32", "--cache", str(store)]
    embedded = CliRunner().invoke(app, ["embed", "hello there", "--model", str(tiny_bert), *args])
    assert embedded.exit_code == 0, embedded.output
    manifest = next(store.glob("*/torch-cpu-fp32/manifest.json"))
    stamp = manifest.stat().st_mtime_ns
    again = CliRunner().invoke(app, ["embed", "hello again", "--model", str(tiny_bert), *args])
    assert again.exit_code == 0, again.output
    assert manifest.stat().st_mtime_ns == stamp, "the second command reused the artifact in --cache"

    classified = CliRunner().invoke(app, ["classify", str(tiny_classifier), "a fine film", *args, "--json"])
    assert classified.exit_code == 0, classified.output
    assert len(list(store.glob("*/torch-cpu-fp32/manifest.json"))) == 2


def test_convert_writes_where_the_loading_commands_read_by_default(tiny_bert: Path, tmp_path: Path, monkeypatch):
    """`convert` without --out and `embed` without --cache meet in $SILICONLAB_CACHE."""
    store = tmp_path / "env-store"
    monkeypatch.setenv("SILICONLAB_CACHE", str(store))
    converted = CliRunner().invoke(app, ["convert", str(tiny_bert), "--units", "torch-cpu-fp32"])
    assert converted.exit_code == 0, converted.output
    manifest = next(store.glob("*/torch-cpu-fp32/manifest.json"))
    stamp = manifest.stat().st_mtime_ns
    embedded = CliRunner().invoke(app, ["embed", "hello", "--model", str(tiny_bert), "--unit", "torch-cpu-fp32"])
    assert embedded.exit_code == 0, embedded.output
    assert manifest.stat().st_mtime_ns == stamp


def test_a_cache_that_is_a_file_is_refused_before_any_work(tmp_path: Path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = CliRunner().invoke(app, ["classify", "sentiment", "hi", "--cache", str(not_a_folder)])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
