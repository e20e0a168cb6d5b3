"""The demo's four scenarios: what each asks of a unit, how its answer reads, and its real example texts.

Every example and every searchable sentence comes from the real data the task models know (movie reviews,
the SMS spam collection, chatterbot-corpus), chosen by content hash so the set is the same on every machine.
Examples are drawn from the held-out test splits, never from what a head was trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

#: Sentences the search scenario ranks (half short review lines, half chatterbot replies).
SEARCH_SIZE = 200
#: Neighbours the search scenario lists.
TOP_K = 3


@dataclass(frozen=True)
class Scenario:
    """One tab of the demo: the model it loads, what the user types, and how an answer is compared."""

    key: str
    title: str
    model: str  # the task model each unit loads (chat and search share MiniLM)
    prompt: str
    agreement: str  # what "agrees with fp32" compares, in words


SCENARIOS: dict[str, Scenario] = {
    "sentiment": Scenario("sentiment", "Sentiment", "sentiment", "a movie review", "the label"),
    "spam": Scenario("spam", "E-mail / spam", "spam", "a message or e-mail", "the label"),
    "chat": Scenario("chat", "Chat", "minilm", "a chat message", "the matched prompt"),
    "search": Scenario("search", "Semantic search", "minilm", "a sentence to search for", "the nearest sentence"),
}


@dataclass
class Answer:
    """One unit's answer: a one-line summary, the key agreement compares, and scores to show."""

    summary: str
    key: str
    short: str  # what fits a table cell
    scores: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@lru_cache(maxsize=1)
def search_sentences() -> tuple[str, ...]:
    """The fixed searchable set: short movie-review lines and chatterbot replies, first by content hash."""
    from siliconlab.data.tasks import text_hash
    from siliconlab.tasks.chat import corpus_pairs

    frame = _labelled("sentiment")
    reviews = [t for t in frame[frame["split"] == "train"].sort_values("hash")["text"] if 6 <= len(t.split()) <= 25]
    replies = sorted({r for _, r, _ in corpus_pairs() if 4 <= len(r.split()) <= 25}, key=text_hash)
    half = SEARCH_SIZE // 2
    return tuple(reviews[:half] + replies[: SEARCH_SIZE - half])


def _labelled(task: str) -> Any:
    from siliconlab.data.tasks import labelled

    return labelled(task)


def _test_examples(task: str, label: str, count: int, max_words: int = 30) -> list[str]:
    frame = _labelled(task)
    part = frame[(frame["split"] == "test") & (frame["label"] == label)].sort_values("hash")["text"]
    # ASCII only: the SMS file is read as latin-1, so its few non-ASCII rows (e.g. "£") would show as mojibake
    return [t for t in part if 5 <= len(t.split()) <= max_words and t.isascii()][:count]


@lru_cache(maxsize=4)
def examples(key: str) -> tuple[str, ...]:
    """Real example inputs of a scenario (held-out rows for the classifiers)."""
    if key == "sentiment":
        return tuple(_test_examples("sentiment", "positive", 2) + _test_examples("sentiment", "negative", 2))
    if key == "spam":
        return tuple(_test_examples("spam", "spam", 2) + _test_examples("spam", "ham", 2))
    if key == "chat":
        from siliconlab.tasks.chat import corpus_pairs

        prompts = [p for p, _, _ in corpus_pairs() if p.endswith("?") and len(p.split()) >= 3]
        return tuple(prompts[i] for i in (0, 7, 21, 40) if i < len(prompts))
    if key == "search":
        # other held-out reviews than the sentiment tab's
        return tuple(
            _test_examples("sentiment", "positive", 4, 20)[2:] + _test_examples("sentiment", "negative", 4, 20)[2:]
        )
    raise KeyError(key)


class SearchIndex:
    """The search sentences embedded once by one unit; a query is ranked by cosine similarity."""

    def __init__(self, embedder: Any):
        self.embedder = embedder
        self.sentences = search_sentences()
        self.vectors = self._embeddings()

    def _embeddings(self) -> np.ndarray:
        """Embedded once per unit artifact and kept beside it (plain .npy), keyed by the sentences and the
        artifact's manifest, so the demo starts fast and a rebuilt artifact gets fresh embeddings."""
        import hashlib

        artifact = self.embedder.loaded.artifact_dir
        path = None
        if artifact is not None and (artifact / "manifest.json").is_file():
            digest = hashlib.sha256("\n".join(self.sentences).encode())
            digest.update((artifact / "manifest.json").read_bytes())
            path = artifact.parent / ".demo-search" / f"{self.embedder.unit}-{digest.hexdigest()[:16]}.npy"
            if path.is_file():
                cached = np.load(path, allow_pickle=False)
                if cached.shape[0] == len(self.sentences):
                    return cached
        vectors = self.embedder.encode(list(self.sentences))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}-{os.getpid()}.tmp.npy")
            np.save(tmp, vectors, allow_pickle=False)
            tmp.replace(path)
        return vectors

    def neighbours(self, text: str, k: int = TOP_K) -> list[tuple[str, float]]:
        query = self.embedder.encode([text])[0]
        scores = self.vectors @ query
        best = np.argsort(-scores)[:k]
        return [(self.sentences[i], float(scores[i])) for i in best]


def build_engine(key: str, pipeline: Any) -> Any:
    """What a unit needs for a scenario, built once per unit: the pipeline, a chat bot or a search index."""
    if key == "chat":
        from siliconlab.tasks.chat import RetrievalChat

        return RetrievalChat(pipeline)
    if key == "search":
        return SearchIndex(pipeline)
    return pipeline


def ask(key: str, engine: Any, text: str) -> Answer:
    """One unit answers one text of a scenario."""
    if key in ("sentiment", "spam"):
        result = engine.classify([text])[0]
        if result.get("error"):
            from siliconlab.errors import UsageError

            raise UsageError(result["error"])
        label = result["label"]
        return Answer(f"{label} ({result['score']:.2f})", label, label, result["scores"], result)
    if key == "chat":
        result = engine.reply(text)
        matched = f"matched “{_short(result['matched'], 60)}”, cosine {result['score']:.2f}"
        short = _short(result["reply"], 40)
        scores = {result["reply"]: result["score"]}
        return Answer(f"{result['reply']}  [{matched}]", result["matched"], short, scores, result)
    if key == "search":
        found = engine.neighbours(text)
        summary = " | ".join(f"{_short(s, 60)} ({score:.2f})" for s, score in found)
        detail = {"neighbours": [{"sentence": s, "cosine": score} for s, score in found]}
        return Answer(summary, found[0][0], f"{_short(found[0][0], 40)} ({found[0][1]:.2f})", dict(found), detail)
    raise KeyError(key)
