"""What a model source is and what loading one yields."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["embedding", "classification"]


@dataclass(frozen=True)
class Head:
    """What an encoder's graph ends in. Units, parity and conversion ask this, never a task's name: the tasks
    (tasks/registry.py) sit above them and may put any answer on top of either head."""

    name: str  # the manifest's and `siliconlab models`' "task" value
    output_names: tuple[str, ...]  # what every unit returns, in this order
    classifier: bool  # class logits from a classification head, rather than a mean-pooled sentence embedding
    auto_class: str  # the transformers factory that builds it from a config
    answer: str  # the output one row per text comes from (what an exported or served model returns)


EMBEDDING_HEAD = Head("embedding", ("token_states", "sentence_embedding"), False, "AutoModel", "sentence_embedding")
CLASSIFIER_HEAD = Head("classification", ("logits",), True, "AutoModelForSequenceClassification", "logits")
HEADS: dict[str, Head] = {head.name: head for head in (EMBEDDING_HEAD, CLASSIFIER_HEAD)}

#: Output names per head name; every unit returns exactly these, in this order.
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {name: head.output_names for name, head in HEADS.items()}


def head_for_outputs(output_names: Iterable[str]) -> Head:
    """The head a runner's (or a manifest's) outputs come from."""
    return CLASSIFIER_HEAD if "logits" in output_names else EMBEDDING_HEAD


#: A Hugging Face model or one of its layers, read by attribute (`config`, `save_pretrained`, `.self.query`, ...).
#: torch types every module attribute as `Tensor | Module`, so these are duck-typed rather than `nn.Module`.
HfModule = Any

#: Padded tokens per runner call when a pipeline runs a list of texts on a CPU unit (tasks/pipeline.py cuts the
#: list into length-sorted groups within it). Measured on the 2-core VM, 32 real texts (median 24 tokens) per
#: call: budgets of 128-512 tokens were the fastest for every CPU unit, 2-2.6x faster than one padded batch of
#: 32 (docs/tasks.md). A runner whose answer for a text depends on its batch neighbours sets 1 (each text alone).
CPU_TOKENS_PER_CALL = 256


@dataclass
class LoadedModel:
    """A fresh fp32 PyTorch model in eval mode with its tokenizer: the reference every unit is checked against."""

    name: str
    model: HfModule
    tokenizer: Any
    task: Task
    max_length: int
    content_hash: str
    config: Any = field(repr=False, default=None)

    @property
    def head(self) -> Head:
        return HEADS[self.task]

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.head.output_names

    @property
    def num_heads(self) -> int:
        return int(self.config.num_attention_heads)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)


class ModelSource(ABC):
    """Where a model comes from. Loading must be cheap to repeat: parity needs a model no exporter has touched."""

    name: str
    source: str
    purpose: str
    architecture_only: bool = False
    spec: str = ""

    @property
    @abstractmethod
    def config(self) -> Any:
        """The Hugging Face config, read without loading the weights."""

    @abstractmethod
    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        """Build a fresh fp32 eval-mode model and its tokenizer."""

    @abstractmethod
    def content_hash(self) -> str:
        """A hash of everything that determines the model's function (weights, config, tokenizer)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Facts for `siliconlab models`: params, size_bytes, task, without loading the weights."""


def hash_files(paths: Iterable[Path], root: Path, extra: str = "") -> str:
    """sha256 over (relative name, bytes) of each file, in sorted order, plus an optional recipe string."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def count_params(config: Any, task: Task) -> int:
    """Parameter count from the config alone (meta device: no memory, no time)."""
    import torch
    import transformers

    factory = getattr(transformers, HEADS[task].auto_class)
    with torch.device("meta"):
        model = factory.from_config(config)
    return sum(p.numel() for p in model.parameters())


def max_length_of(config: Any, tokenizer: Any) -> int:
    """The longest input the model accepts: position embeddings, capped by the tokenizer's own limit."""
    limit = int(getattr(config, "max_position_embeddings", 512))
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < limit:
        limit = tok_limit
    return limit


#: siliconlab's classifier head on a sentence encoder (models/heads.py): its weights file and config entry.
HEAD_FILE = "head.safetensors"
HEAD_KEY = "siliconlab_head"


def head_spec(config: Any) -> dict[str, Any] | None:
    """The `siliconlab_head` entry of a config (object or dict), or None for a plain encoder."""
    spec = config.get(HEAD_KEY) if isinstance(config, dict) else getattr(config, HEAD_KEY, None)
    return spec if isinstance(spec, dict) else None


def labels_of(config: Any) -> list[str]:
    """Class names in logit order: our head's labels, else the config's id2label."""
    head = head_spec(config)
    if head is not None:
        return list(head["labels"])
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label[key]) for key in sorted(id2label, key=int)]
