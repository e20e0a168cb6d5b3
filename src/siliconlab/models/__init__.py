"""Model sources: built-in names, local Hugging Face directories, hub ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from siliconlab.errors import UsageError
from siliconlab.models.base import OUTPUT_NAMES, LoadedModel, ModelSource
from siliconlab.models.bert_base import BertBaseSource
from siliconlab.models.generative import CausalDirectorySource, gpt2_source, t5_small_source
from siliconlab.models.hf_directory import HFDirectorySource
from siliconlab.models.kinds import KINDS, Kind, is_generative, kind_of
from siliconlab.models.minilm import MiniLMSource
from siliconlab.models.smollm2 import SmolLM2Source
from siliconlab.models.task_models import TaskModelSource

DEFAULT_MODEL = "minilm"

#: Built-in model names -> factories. Adding a model is one line here.
BUILTIN: dict[str, Callable[[], ModelSource]] = {
    "minilm": MiniLMSource,
    "bert-base": BertBaseSource,
    "sentiment": lambda: TaskModelSource("sentiment"),
    "spam": lambda: TaskModelSource("spam"),
    "smollm2-chat": SmolLM2Source,
    "gpt2": gpt2_source,
    "t5-small": t5_small_source,
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
        return CausalDirectorySource(path) if _is_generative_dir(path) else HFDirectorySource(path)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if path.exists():
        raise UsageError(f"not a directory: {name} (a model is a built-in name, a model directory or a hub id)")
    if looks_like_path:
        raise UsageError(f"no such directory: {name}")
    if name.count("/") == 1:
        from siliconlab.models.hub import hub_source

        return hub_source(name)
    raise UsageError(
        f"unknown model '{name}': choose one of {', '.join(BUILTIN)}, chat-retrieval (the chat task), "
        "a local Hugging Face model directory, or a hub id like owner/name"
    )


def _is_generative_dir(path: Path) -> bool:
    """A folder whose config.json names a causal / encoder-decoder LM architecture (read as plain JSON)."""
    import json

    from siliconlab.models.generative import is_generative_config

    try:
        payload = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False  # HFDirectorySource says what is wrong with it
    return isinstance(payload, dict) and is_generative_config(payload)


__all__ = [
    "BUILTIN",
    "DEFAULT_MODEL",
    "KINDS",
    "OUTPUT_NAMES",
    "Kind",
    "LoadedModel",
    "ModelSource",
    "generative_source",
    "is_generative",
    "kind_of",
    "resolve",
]


def generative_source(name: str) -> ModelSource | None:
    """The source when `name` is a generative model known without the network (a built-in such as smollm2-chat,
    gpt2, t5-small, or a local causal / encoder-decoder folder); None otherwise, hub ids included (resolving one
    downloads it: the encoder path resolves it, after checking its other input)."""
    if name in BUILTIN or Path(name).expanduser().is_dir():
        source = resolve(name)
        return source if is_generative(source) else None
    return None
