"""Generation: a causal LM (smollm2-chat, gpt2, a causal-LM folder) replying token by token on a decoder unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siliconlab.errors import UsageError
from siliconlab.tasks.generate import GenerativeChat
from siliconlab.tasks.pipeline import Pipeline
from siliconlab.tasks.task import Loading, Task


def generative_source(name: str) -> Any:
    """The model source when `name` is a generative model (smollm2-chat, gpt2, a causal-LM folder), else None."""
    from siliconlab.models import BUILTIN, is_generative, resolve

    if name in BUILTIN or Path(name).expanduser().is_dir():
        source = resolve(name)
        return source if is_generative(source) else None
    return None


class GenerationTask(Task):
    """`reply` / `stream`; served as a streaming (decoupled) Triton model, not batched."""

    name = "generation"
    pipeline_class = GenerativeChat
    models = ("smollm2-chat",)
    streaming = True

    def claims(self, name: str) -> bool:
        return generative_source(name) is not None

    def load(self, name: str, unit: str, cache: Path | None, threads: int | None, using: Loading) -> Pipeline:
        from siliconlab.bench.machine import default_threads
        from siliconlab.paths import default_cache
        from siliconlab.tasks.generate import load_generative

        if threads is not None and threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        cache = Path(cache) if cache is not None else default_cache()
        return load_generative(generative_source(name), unit, cache, threads or default_threads())
