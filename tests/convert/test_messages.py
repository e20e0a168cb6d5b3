"""Failure lines: parity refuses [UNK] soup, single-text errors say 'the text', no exception class paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from siliconlab.convert.parity import reference_outputs, unknown_token_share
from siliconlab.convert.pipeline import one_line
from siliconlab.data import parity_texts
from siliconlab.errors import UsageError
from siliconlab.models import resolve
from siliconlab.text import encode


def test_parity_refuses_sentences_that_tokenize_to_unknown_tokens(tiny_model: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    model = resolve(str(tiny_model)).load()
    assert unknown_token_share(model.tokenizer, parity_texts()) < 0.05
    folder = tmp_path / "five-tokens"
    folder.mkdir()
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    shutil.copy(tiny_model / "config.json", folder)
    model.tokenizer = AutoTokenizer.from_pretrained(folder)  # what a folder without its tokenizer used to get
    assert unknown_token_share(model.tokenizer, parity_texts()) == 1.0
    with pytest.raises(UsageError, match=r"maps 100% of the parity sentences' tokens to '\[UNK\]'"):
        reference_outputs(model, parity_texts())


def test_single_text_errors_say_the_text(tiny_model: Path, caplog: pytest.LogCaptureFixture):
    tokenizer = resolve(str(tiny_model)).load().tokenizer
    with pytest.raises(UsageError, match="^the text is empty"):
        encode(tokenizer, ["  "], 64)
    with pytest.raises(UsageError, match="^text 1 is empty"):
        encode(tokenizer, ["fine", ""], 64)
    encode(tokenizer, ["word " * 100], 16)
    assert "the text has 102 tokens" in caplog.text


class Fail(Exception):
    """Stands in for onnxruntime.capi.onnxruntime_pybind11_state.Fail."""


Fail.__module__ = "onnxruntime.capi.onnxruntime_pybind11_state"


def test_failure_lines_carry_the_message_not_the_class_path():
    line = one_line(Fail("[ONNXRuntimeError] : 1 : FAIL : Load model failed\nsecond line"))
    assert line == "[ONNXRuntimeError] : 1 : FAIL : Load model failed"
    assert one_line(Fail()) == "Fail"
