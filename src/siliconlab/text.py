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
        raise UsageError(
            f"{name} is not valid UTF-8 ({_describe_surrogate(text[exc.start])} at offset {exc.start})"
        ) from None
    if not text.strip():
        raise UsageError(f"{name} is empty: it needs at least one non-blank character")
    return text


def _describe_surrogate(char: str) -> str:
    """A byte that surrogateescape smuggled in (U+DC80-U+DCFF) is named as that byte; any other lone surrogate
    (e.g. a JSON "\\ud800") as its code point. Encoding it back with surrogateescape raises for the latter."""
    code = ord(char)
    return f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"lone surrogate U+{code:04X}"


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
    rows, full_lengths = tokenize(tokenizer, texts, max_length, truncation)
    for index, length in enumerate(full_lengths):
        if warn and length > max_length:
            log.warning(
                "%s has %d tokens, more than the model's maximum of %d: truncated to %d",
                "the text" if single else f"text {index}",
                length,
                max_length,
                max_length,
            )
    return padded(tokenizer, rows)


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, truncation: str = "head"
) -> tuple[list[list[int]], list[int]]:
    """(token ids per text cut to `max_length`, each text's full token count): one tokenizer call, no padding.

    Texts must be checked already (check_text). The cut keeps the special tokens, as the tokenizer's own
    truncation does; "head+tail" keeps a quarter of the window from the start and the rest from the end."""
    if truncation not in TRUNCATIONS:
        raise UsageError(f"unknown truncation '{truncation}': choose from {', '.join(TRUNCATIONS)}")
    rows = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    full_lengths = [len(ids) for ids in rows]
    if max(full_lengths, default=0) <= max_length:
        return rows, full_lengths
    prefix, suffix = _special_ends(tokenizer)
    keep = max_length - prefix - suffix
    head = keep // 4 if truncation == "head+tail" else keep
    cut = []
    for row in rows:
        body = row[prefix : len(row) - suffix]
        if len(body) > keep:
            body = body[:head] + body[len(body) - (keep - head) :]
        cut.append(row[:prefix] + body + row[len(row) - suffix :])
    return cut, full_lengths


def _special_ends(tokenizer: Any) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a text ([CLS] ... [SEP]: 1 and 1)."""
    plain = tokenizer(["x"], add_special_tokens=False)["input_ids"][0]
    full = tokenizer(["x"], add_special_tokens=True)["input_ids"][0]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return start, len(full) - start - len(plain)
    return 0, 0


def padded(tokenizer: Any, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token rows padded to the longest, on the tokenizer's padding side, with its pad id (as padding="longest")."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = row
        mask[index, span] = 1
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
