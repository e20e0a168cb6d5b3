"""Any Hugging Face model directory on disk (encoders, optionally with a sequence-classification head)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from siliconlab.errors import UsageError
from siliconlab.models.base import HEADS, LoadedModel, ModelSource, Task, count_params, hash_files, max_length_of
from siliconlab.models.remote_code import refuse_remote_code

#: Files that determine the model's function; READMEs and such do not change the hash.
_HASHED_SUFFIXES = {".safetensors", ".json", ".txt", ".model"}

#: A directory needs one of these to have a tokenizer of its own. Without them transformers builds a
#: tokenizer from the config alone with a 5-token vocabulary (every word becomes [UNK]), and everything
#: downstream, parity included, would "work" on meaningless input.
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def _config_problem(path: Path) -> str:
    """Why config.json cannot describe a model ('' when it can): checked before any unit is converted."""
    try:
        payload = json.loads((path / "config.json").read_text())
    except UnicodeDecodeError:
        return "is not text"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    if not isinstance(payload, dict):
        return f"holds a JSON {type(payload).__name__}, not an object"
    if not isinstance(payload.get("model_type"), str):
        return 'has no "model_type" (e.g. "bert")'
    return ""


def task_of(config: Any) -> Task:
    from siliconlab.models.base import head_spec

    if head_spec(config) is not None:
        return "classification"  # an encoder with siliconlab's mean-pool head (models/heads.py)
    architectures = getattr(config, "architectures", None) or []
    return "classification" if any("SequenceClassification" in a for a in architectures) else "embedding"


def load_hf_model(path: Path, attn_implementation: str = "sdpa") -> Any:
    """A fp32 eval-mode model from a HF folder: encoder, *ForSequenceClassification, or encoder + our head."""
    import torch
    import transformers
    from transformers import AutoConfig

    from siliconlab.models.heads import MeanPoolClassifier, head_spec

    kwargs: dict[str, Any] = {"attn_implementation": attn_implementation, "use_safetensors": True,
                              "dtype": torch.float32, "trust_remote_code": False}  # fmt: skip
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    if head_spec(config) is not None:
        return MeanPoolClassifier.from_pretrained(path, **kwargs).eval()
    factory = getattr(transformers, HEADS[task_of(config)].auto_class)
    return factory.from_pretrained(path, **kwargs).eval()


class HFDirectorySource(ModelSource):
    """A local directory in Hugging Face layout (config.json, safetensors weights, tokenizer files)."""

    def __init__(self, path: Path, name: str | None = None, source: str | None = None, purpose: str = ""):
        self.path = Path(path)
        self.name = name or self.path.resolve().name  # `model/..` is the folder's parent
        self.source = source or f"local directory {self.path}"
        self.purpose = purpose or "your own model"
        if not (self.path / "config.json").is_file():
            raise UsageError(f"'{self.path}' is not a Hugging Face model directory (no config.json)")
        if any(self.path.glob("*.bin")) and not any(self.path.glob("*.safetensors")):
            raise UsageError(f"'{self.path}' has only pickle (.bin) weights; siliconlab loads safetensors only")
        refuse_remote_code(self.path)
        problem = _config_problem(self.path)
        if problem:
            raise UsageError(f"'{self.path / 'config.json'}' {problem}")
        try:
            self.config  # noqa: B018 - parse it now: a bad config is bad input, not one failure per unit
        except Exception as exc:
            message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"'{self.path / 'config.json'}' is not a usable model config: {message}") from None
        if not any((self.path / name).is_file() for name in TOKENIZER_FILES):
            raise UsageError(
                f"'{self.path}' has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): copy the tokenizer "
                "the model was trained with into it (e.g. tokenizer.save_pretrained(path))"
            )

    @cached_property
    def config(self) -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.path, trust_remote_code=False)

    @property
    def task(self) -> Task:
        return task_of(self.config)

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        from transformers import AutoTokenizer

        model = load_hf_model(self.path, attn_implementation)
        tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=False)
        vocab = int(getattr(model.config, "vocab_size", 0) or 0)
        if len(tokenizer) < vocab // 10:
            raise UsageError(
                f"the tokenizer in '{self.path}' knows {len(tokenizer)} tokens but the model has {vocab} embeddings: "
                "its tokenizer files are missing or belong to another model"
            )
        return LoadedModel(
            name=self.name,
            model=model,
            tokenizer=tokenizer,
            task=self.task,
            max_length=max_length_of(model.config, tokenizer),
            content_hash=self.content_hash(),
            config=model.config,
        )

    @cached_property
    def _hash(self) -> str:
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES]
        return hash_files(files, self.path)

    def content_hash(self) -> str:
        return self._hash

    def describe(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.path.glob("*.safetensors"))
        return {
            "params": count_params(self.config, self.task),
            "size_bytes": size,
            "task": self.task,
            "architecture": (self.config.architectures or [self.config.model_type])[0],
        }
