"""The held-out split by content hash: one rule that task data (tasks.py) and the parity / calibration texts
(`__init__.py`) both read, so no text used for evaluation is ever used to convert or to train."""

from __future__ import annotations

import hashlib

#: Percent of texts (by content hash) held out for evaluation; never used for training, calibration or parity.
TEST_PERCENT = 20


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def held_out_digest(digest: str) -> bool:
    """Is the text with this sha256 hex digest in the held-out split?"""
    return int(digest[:8], 16) % 100 < TEST_PERCENT


def is_test(text: str) -> bool:
    """Is this text in some task's held-out split? (Parity and calibration texts must not be.)"""
    return held_out_digest(text_hash(text))
