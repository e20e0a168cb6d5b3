"""Generation: a causal LM (smollm2-chat, gpt2, a causal-LM folder) replying token by token on a decoder unit."""

from __future__ import annotations

from pathlib import Path

from siliconlab.tasks.generate import GenerativeChat
from siliconlab.tasks.pipeline import Pipeline
from siliconlab.tasks.task import Loading, Task


class GenerationTask(Task):
    """`reply` / `stream`; served as a streaming (decoupled) Triton model, not batched."""

    name = "generation"
    pipeline_class = GenerativeChat
    models = ("smollm2-chat",)
    streaming = True

    def claims(self, name: str) -> bool:
        from siliconlab.models import generative_source

        return generative_source(name) is not None

    def load(self, name: str, unit: str, cache: Path | None, threads: int | None, using: Loading) -> Pipeline:
        from siliconlab.models import generative_source
        from siliconlab.models.generative import require_causal
        from siliconlab.tasks.generate import open_generative

        source = generative_source(name)
        require_causal(source)
        return using.first_serving(source, unit, cache, threads, open_generative)
