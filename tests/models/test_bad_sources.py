"""Bad model directories are bad input: refused at resolve/load time with one line, before any unit runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.errors import UsageError
from siliconlab.models import resolve

cli = CliRunner()
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def _copy_without_tokenizer(tiny_bert: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_bert, folder)
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    return folder


def test_directory_without_tokenizer_files_is_refused(tiny_bert: Path, tmp_path: Path):
    folder = _copy_without_tokenizer(tiny_bert, tmp_path)
    with pytest.raises(UsageError, match="has no tokenizer files"):
        resolve(str(folder))
    out = tmp_path / "out"
    result = cli.invoke(app, ["convert", str(folder), "--units", "onnxruntime-cpu-fp32", "--out", str(out)])
    assert result.exit_code == 2 and "no tokenizer files" in result.output
    assert not out.exists()


def test_tokenizer_far_smaller_than_the_model_vocabulary_is_refused_at_load(tiny_bert: Path, tmp_path: Path):
    folder = _copy_without_tokenizer(tiny_bert, tmp_path)
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    source = resolve(str(folder))  # a vocab file is there, so resolve accepts it
    with pytest.raises(UsageError, match="knows 5 tokens but the model has 30522 embeddings"):
        source.load()
    out = tmp_path / "out"
    result = cli.invoke(app, ["convert", str(folder), "--units", "onnxruntime-cpu-fp32", "--out", str(out)])
    assert result.exit_code == 2 and "knows 5 tokens" in result.output
    assert list(out.iterdir()) == []  # no model folder left behind


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "holds a JSON list"),
        ('{"hidden_size": 32}', 'has no "model_type"'),
        ('{"model_type": "no-such-architecture"}', "is not a usable model config"),
    ],
)
def test_bad_config_is_bad_input_and_leaves_nothing(tiny_bert: Path, tmp_path: Path, config: str, message: str):
    folder = tmp_path / "bad-config"
    shutil.copytree(tiny_bert, folder)
    (folder / "config.json").write_text(config)
    with pytest.raises(UsageError, match=message):
        resolve(str(folder))
    out = tmp_path / "out"
    units = "onnxruntime-cpu-fp32,torch-cpu-fp32"
    result = cli.invoke(app, ["convert", str(folder), "--units", units, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("error:") == 1  # once, not once per unit
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_path_says_no_such_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    for name in ("./my-hf-model-dir", str(tmp_path / "gone"), "~/no-such-siliconlab-model-dir", "a/b/c"):
        with pytest.raises(UsageError, match=f"^no such directory: {name}$"):
            resolve(name)
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match="not a directory: ./weights.safetensors"):
        resolve("./weights.safetensors")
    with pytest.raises(UsageError, match="unknown model 'minilmm'"):
        resolve("minilmm")


def test_valid_directory_still_resolves(tiny_bert: Path):
    source = resolve(str(tiny_bert))
    assert json.loads((tiny_bert / "config.json").read_text())["model_type"] == "bert"
    assert source.load().task == "embedding"
