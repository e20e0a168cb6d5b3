"""`chat-retrieval`: reply with the answer of the most similar known prompt (MiniLM cosine similarity).

The prompts and replies are chatterbot-corpus' English conversations (PyPI `chatterbot-corpus`): each
consecutive pair of lines in a conversation is (prompt, reply). Below a similarity threshold the bot says it
has no good answer rather than pretending. The generative chatbot is another model behind the same `reply`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.tasks.embedding import EmbeddingPipeline
from siliconlab.tasks.pipeline import Pipeline, Prepared, as_list
from siliconlab.tasks.task import Column, Loading, Task
from siliconlab.text import check_text

#: Cosine below which the best match is not an answer (paraphrases of a prompt score ~0.7, unrelated text ~0).
THRESHOLD = 0.5
NO_ANSWER = "Sorry, I don't have a good answer to that."


@lru_cache(maxsize=1)
def corpus_pairs() -> tuple[tuple[str, str, str], ...]:
    """(prompt, reply, category) for every consecutive pair, first reply kept for a repeated prompt."""
    import yaml

    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise SiliconlabError("chat-retrieval needs the package chatterbot-corpus (pip install it)")
    folder = Path(spec.submodule_search_locations[0]) / "data" / "english"
    pairs: dict[str, tuple[str, str, str]] = {}
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        category = ", ".join(map(str, data.get("categories") or [path.stem]))
        for conversation in data.get("conversations") or []:
            lines = [str(line).strip() for line in conversation if str(line).strip()]
            for prompt, reply in zip(lines, lines[1:]):
                pairs.setdefault(prompt.lower(), (prompt, reply, category))
    return tuple(pairs.values())


class RetrievalChat(Pipeline):
    task = "chat"
    methods = ("reply",)

    def __init__(self, embedder: EmbeddingPipeline):
        super().__init__(embedder.loaded)
        self.embedder = embedder
        self.pairs = corpus_pairs()
        self._prompts = self._prompt_embeddings()

    @property
    def model(self) -> str:
        return "chat-retrieval"

    def _prompt_embeddings(self) -> np.ndarray:
        """Embeddings of every known prompt, cached beside the unit's artifact (plain .npy, no pickle), keyed
        by the prompts and the artifact's manifest so a rebuilt artifact gets fresh embeddings."""
        digest = hashlib.sha256("\n".join(p for p, _, _ in self.pairs).encode())
        artifact = self.loaded.artifact_dir
        path = None
        if artifact is not None and (artifact / "manifest.json").is_file():
            digest.update((artifact / "manifest.json").read_bytes())
            path = artifact.parent / ".chat" / f"{self.unit}-{digest.hexdigest()[:16]}.npy"
        if path is not None and path.is_file():
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(self.pairs):
                return cached
        embeddings = self.embedder.encode([p for p, _, _ in self.pairs])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, embeddings, allow_pickle=False)
            tmp.replace(path)
        return embeddings

    def reply(self, text: Any) -> dict[str, Any]:
        """{reply, score, matched, category, unit, ms}: the best-matching prompt's reply, or a no-answer."""
        items, single = as_list(text)
        if not single and len(items) != 1:
            raise SiliconlabError("reply() answers one message at a time")
        message = check_text(items[0], "the message")
        begin = time.perf_counter()
        answer = self.match(self.embedder.encode([message])[0])
        ms = (time.perf_counter() - begin) * 1e3
        self.last_ms = ms
        return answer | {"unit": self.unit, "ms": ms}

    def match(self, query: np.ndarray) -> dict[str, Any]:
        """{reply, score, matched, category, answered} for one message's embedding."""
        scores = self._prompts @ query
        best = int(np.argmax(scores))
        score = float(scores[best])
        prompt, answer, category = self.pairs[best]
        answered = score >= THRESHOLD
        return {"reply": answer if answered else NO_ANSWER, "score": score, "matched": prompt, "category": category,
                "answered": answered}  # fmt: skip


class RetrievalChatTask(Task):
    """chat-retrieval: the reply of the most similar known prompt, on a served or loaded minilm."""

    name = "chat"
    pipeline_class = RetrievalChat
    models = ("chat-retrieval",)
    stands_on = "minilm"

    def load(self, name: str, unit: str, cache: Path | None, threads: int | None, using: Loading) -> Pipeline:
        return self.over(using.load(self.stands_on, unit, cache, threads))

    def over(self, pipeline: Pipeline) -> Pipeline:
        if not isinstance(pipeline, EmbeddingPipeline):
            raise UsageError(f"chat-retrieval stands on an embedding model, not on '{pipeline.model}'")
        return RetrievalChat(pipeline)

    def columns(self, labels: list[str], width: int) -> list[Column]:
        return [Column("reply", "str"), Column("score", "float"), Column("matched", "str")]

    def serve_answer(self, pipeline: Pipeline, prepared: Prepared) -> dict[str, list[Any]]:
        """One reply per prepared message: the embedder runs them as one batch, each is matched alone."""
        assert isinstance(pipeline, RetrievalChat)
        answers = [pipeline.match(query) for query in pipeline.embedder.run_prepared(prepared, "sentence_embedding")]
        return {key: [answer[key] for answer in answers] for key in ("reply", "score", "matched")}
