import logging

import numpy as np
import pytest

from siliconlab.errors import UsageError
from siliconlab.models import resolve
from siliconlab.text import encode, fixed_shape_inputs


@pytest.fixture(scope="module")
def tokenizer():
    return resolve("minilm").load().tokenizer


@pytest.mark.parametrize("texts", [[], [""], ["   "], ["fine", "\n\t"]])
def test_empty_text_is_a_clear_error(tokenizer, texts):
    with pytest.raises(UsageError, match="empty|no text"):
        encode(tokenizer, texts, 512)


def test_long_text_is_truncated_with_a_warning(tokenizer, caplog):
    long_text = "word " * 600
    with caplog.at_level(logging.WARNING, logger="siliconlab"):
        ids, mask = encode(tokenizer, [long_text, "short"], 64)
    assert ids.shape == (2, 64)
    assert "truncated to 64" in caplog.text
    assert mask[1].sum() < 64


def test_padding_is_to_the_longest(tokenizer):
    ids, mask = encode(tokenizer, ["a b c d e f", "a"], 512)
    assert ids.dtype == np.int64 and ids.shape[1] == int(mask.sum(axis=1).max())


def test_fixed_shape_inputs_fill_every_position(tokenizer):
    ids, mask = fixed_shape_inputs(tokenizer, 3, 40, "hello world")
    assert ids.shape == (3, 40) and mask.all()
    assert ids[0, 0] == tokenizer.cls_token_id and ids[0, -1] == tokenizer.sep_token_id
