"""Any Hugging Face model directory on disk (encoders, optionally with a sequence-classification head)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from siliconlab.errors import UsageError
from siliconlab.models.base import LoadedModel, ModelSource, Task, count_params, hash_files, max_length_of

#: Files that determine the model's function; READMEs and such do not change the hash.
_HASHED_SUFFIXES = {".safetensors", ".json", ".txt", ".model"}


def task_of(config: Any) -> Task:
    architectures = getattr(config, "architectures", None) or []
    return "classification" if any("SequenceClassification" in a for a in architectures) else "embedding"


class HFDirectorySource(ModelSource):
    """A local directory in Hugging Face layout (config.json, safetensors weights, tokenizer files)."""

    def __init__(self, path: Path, name: str | None = None, source: str | None = None, purpose: str = ""):
        self.path = Path(path)
        self.name = name or self.path.name
        self.source = source or f"local directory {self.path}"
        self.purpose = purpose or "your own model"
        if not (self.path / "config.json").is_file():
            raise UsageError(f"'{self.path}' is not a Hugging Face model directory (no config.json)")
        if any(self.path.glob("*.bin")) and not any(self.path.glob("*.safetensors")):
            raise UsageError(f"'{self.path}' has only pickle (.bin) weights; siliconlab loads safetensors only")

    @cached_property
    def config(self) -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.path)

    @property
    def task(self) -> Task:
        return task_of(self.config)

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        factory = AutoModelForSequenceClassification if self.task == "classification" else AutoModel
        model = factory.from_pretrained(
            self.path, attn_implementation=attn_implementation, use_safetensors=True, dtype=torch.float32
        ).eval()
        tokenizer = AutoTokenizer.from_pretrained(self.path)
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
