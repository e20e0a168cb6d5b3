"""Text -> token ids and attention mask, with the input checks every entry point shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.log import log


def _which(index: int, count: int) -> str:
    """'the text' when there is only one: 'text 0' reads like a bug to someone who passed one sentence."""
    return "the text" if count == 1 else f"text {index}"


def encode(tokenizer: Any, texts: Sequence[str], max_length: int, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize a batch, padding to the longest text; long texts are truncated with a warning
    (`warn=False` for our own fixed texts, e.g. the parity set on a short-context model)."""
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise UsageError("no text given: pass at least one non-empty text")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"{_which(index, len(texts))} is empty: every text needs at least one non-blank character")
    full_lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    for index, length in enumerate(full_lengths):
        if warn and length > max_length:
            log.warning(
                "%s has %d tokens, more than the model's maximum of %d: truncated to %d",
                _which(index, len(texts)),
                length,
                max_length,
                max_length,
            )
    batch = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="np")
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


def fixed_shape_inputs(tokenizer: Any, batch: int, seq: int, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Real token ids filling exactly `seq` positions ([CLS] text... [SEP]), repeated `batch` times."""
    if batch < 1 or seq < 2:
        raise UsageError(f"batch must be >= 1 and seq >= 2 (got batch={batch}, seq={seq})")
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not body:
        raise UsageError("the filler text produced no tokens")
    repeats = (seq - 2) // len(body) + 1
    ids = [tokenizer.cls_token_id, *(body * repeats)[: seq - 2], tokenizer.sep_token_id]
    input_ids = np.tile(np.asarray(ids, dtype=np.int64), (batch, 1))
    return input_ids, np.ones_like(input_ids)
