"""Text -> token ids and attention mask, with the input checks every entry point shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.log import log


def check_text(text: object, name: str = "the text") -> str:
    """One text as the engines need it: a str with a non-blank character and no undecodable bytes.

    Command-line arguments that are not valid UTF-8 arrive as lone surrogates (Python's surrogateescape);
    tokenizers would raise a TypeError deep inside, so say what is wrong here instead.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{name} is not valid UTF-8 (byte 0x{text[exc.start]:02x} at offset {exc.start})"
            ) from None
    if not isinstance(text, str):
        raise UsageError(f"{name} must be a string, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = text[exc.start].encode("utf-8", "surrogateescape")
        raise UsageError(f"{name} is not valid UTF-8 (byte 0x{raw[0]:02x} at offset {exc.start})") from None
    if not text.strip():
        raise UsageError(f"{name} is empty: it needs at least one non-blank character")
    return text


#: How a text longer than the model's window is cut: keep its beginning, or its beginning and end.
TRUNCATIONS = ("head", "head+tail")


def encode(
    tokenizer: Any, texts: Sequence[str], max_length: int, warn: bool = True, truncation: str = "head"
) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize a batch, padding to the longest text; long texts are truncated with a warning
    (`warn=False` for our own fixed texts, e.g. the parity set on a short-context model).

    `truncation="head+tail"` keeps a long text's first quarter-window and its last three quarters: a review's
    verdict is often at its end (Sun et al., 2019, "How to Fine-Tune BERT for Text Classification", found
    head+tail best on IMDB). Measured for the sentiment model on this project's eval slice: +0.4 points at
    256 tokens (benchmarks/tasks/sentiment_truncation.py)."""
    if truncation not in TRUNCATIONS:
        raise UsageError(f"unknown truncation '{truncation}': choose from {', '.join(TRUNCATIONS)}")
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise UsageError("no text given: pass at least one non-empty text")
    single = len(texts) == 1
    texts = [check_text(text, "the text" if single else f"text {index}") for index, text in enumerate(texts)]
    full_lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    for index, length in enumerate(full_lengths):
        if warn and length > max_length:
            log.warning(
                "%s has %d tokens, more than the model's maximum of %d: truncated to %d",
                "the text" if single else f"text {index}",
                length,
                max_length,
                max_length,
            )
    if truncation == "head+tail" and max(full_lengths) > max_length:
        return _head_and_tail(tokenizer, texts, max_length)
    batch = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="np")
    return batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


def _head_and_tail(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each text's tokens cut to its head and tail around the middle, special tokens added back, padded."""
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    keep = max_length - specials
    head = keep // 4
    rows = []
    for body in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        if len(body) > keep:
            body = body[:head] + body[len(body) - (keep - head) :]
        rows.append(tokenizer.build_inputs_with_special_tokens(body))
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return ids, mask


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
