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


def test_padding_here_matches_the_tokenizers_own_and_head_tail_keeps_both_ends():
    """encode() pads short batches itself (one tokenizer call): it must give exactly what padding="longest" gives;
    head+tail keeps the start and the end of a long text within the window."""
    import numpy as np
    from transformers import AutoTokenizer

    from siliconlab.models.minilm import tokenizer_directory
    from siliconlab.text import encode

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_directory())
    texts = ["a short one", "a somewhat longer sentence with more words in it", "ok"]
    ids, mask = encode(tokenizer, texts, 64)
    expected = tokenizer(texts, padding="longest", return_tensors="np")
    assert np.array_equal(ids, expected["input_ids"]) and np.array_equal(mask, expected["attention_mask"])
    long = "start " + "middle " * 100 + "finale"
    head, _ = encode(tokenizer, [long, "x"], 16, warn=False)
    both, both_mask = encode(tokenizer, [long, "x"], 16, warn=False, truncation="head+tail")
    assert head.shape == both.shape == (2, 16) and both_mask[1].sum() == 3
    words = tokenizer.convert_ids_to_tokens(both[0].tolist())
    assert words[0] == "[CLS]" and words[1] == "start" and words[-2] == "finale" and words[-1] == "[SEP]"
    assert "finale" not in tokenizer.convert_ids_to_tokens(head[0].tolist())
