"""Model sources: built-in names, local Hugging Face directories, hub ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from siliconlab.errors import UsageError
from siliconlab.models.base import OUTPUT_NAMES, LoadedModel, ModelSource
from siliconlab.models.bert_base import BertBaseSource
from siliconlab.models.hf_directory import HFDirectorySource
from siliconlab.models.minilm import MiniLMSource
from siliconlab.models.task_models import TaskModelSource

DEFAULT_MODEL = "minilm"

#: Built-in model names -> factories. Adding a model is one line here.
BUILTIN: dict[str, Callable[[], ModelSource]] = {
    "minilm": MiniLMSource,
    "bert-base": BertBaseSource,
    "sentiment": lambda: TaskModelSource("sentiment"),
    "spam": lambda: TaskModelSource("spam"),
}


def resolve(name: str) -> ModelSource:
    """A built-in name, a local HF directory, or a hub id (owner/name) — in that order."""
    source = _resolve(name)
    source.spec = name  # how to resolve it again, e.g. in a bench worker process
    return source


def _resolve(name: str) -> ModelSource:
    if name in BUILTIN:
        return BUILTIN[name]()
    path = Path(name).expanduser()
    if path.is_dir():
        return HFDirectorySource(path)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if path.exists():
        raise UsageError(f"not a directory: {name} (a model is a built-in name, a model directory or a hub id)")
    if looks_like_path:
        raise UsageError(f"no such directory: {name}")
    if name.count("/") == 1:
        from siliconlab.models.hub import hub_source

        return hub_source(name)
    raise UsageError(
        f"unknown model '{name}': choose one of {', '.join(BUILTIN)}, a local Hugging Face model directory, "
        "or a hub id like owner/name"
    )


__all__ = ["BUILTIN", "DEFAULT_MODEL", "OUTPUT_NAMES", "LoadedModel", "ModelSource", "resolve"]
