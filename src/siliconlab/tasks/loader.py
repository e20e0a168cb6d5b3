"""`siliconlab.load(name, unit)`: a model name -> a ready pipeline on a parity-gated unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.tasks.embedding import EmbeddingPipeline
from siliconlab.tasks.pipeline import ClassifierPipeline, Loaded, Pipeline

#: Built-in task model names and what they do (any local directory works too: its config says which task).
TASK_MODELS = {
    "minilm": "embedding",
    "sentiment": "classification",
    "spam": "classification",
    "chat-retrieval": "chat",
    "smollm2-chat": "chat",
}

#: (model, unit) pairs whose "could not serve" warning was already said in this process.
_WARNED: set[tuple[str, str]] = set()


def load(name: str = "minilm", unit: str = "best", cache: Path | None = None, threads: int | None = None) -> Pipeline:
    """A pipeline for `name` on `unit` ("best" or a unit name); converts and checks parity on first use."""
    from siliconlab.log import quiet_loading

    with quiet_loading():
        return _load(name, unit, cache, threads)


def _load(name: str, unit: str, cache: Path | None, threads: int | None) -> Pipeline:
    if name == "chat-retrieval":
        from siliconlab.tasks.chat import RetrievalChat

        embedder = _load("minilm", unit, cache, threads)
        assert isinstance(embedder, EmbeddingPipeline)  # minilm is an embedding model
        return RetrievalChat(embedder)
    generative = _generative_source(name)
    if generative is not None:
        from siliconlab.bench.machine import default_threads
        from siliconlab.paths import default_cache
        from siliconlab.tasks.generate import load_generative

        if threads is not None and threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        cache = Path(cache) if cache is not None else default_cache()
        return load_generative(generative, unit, cache, threads or default_threads())
    loaded = load_unit(name, unit, cache, threads)
    return ClassifierPipeline(loaded) if loaded.task == "classification" else EmbeddingPipeline(loaded)


def _generative_source(name: str) -> Any:
    """The model source when `name` is a generative model (smollm2-chat, gpt2, a causal-LM folder), else None."""
    from siliconlab.models import BUILTIN, is_generative, resolve

    if name in BUILTIN or Path(name).expanduser().is_dir():
        source = resolve(name)
        return source if is_generative(source) else None
    return None


def load_unit(name: str, unit: str = "best", cache: Path | None = None, threads: int | None = None) -> Loaded:
    from siliconlab.bench.machine import default_threads
    from siliconlab.models import resolve
    from siliconlab.paths import default_cache

    if threads is not None and threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    source = resolve(name)
    cache = Path(cache) if cache is not None else default_cache()
    threads = threads or default_threads()
    failures: list[str] = []
    candidates, why = _candidates(source, unit, cache)
    for candidate in candidates:
        try:
            return _load_on(source, candidate, cache, threads, why)
        except SiliconlabError as exc:
            if unit != "best":
                raise
            failures.append(f"{candidate.name}: {exc}")
            if (source.name, candidate.name) not in _WARNED:  # once per process, however many loads retry it
                _WARNED.add((source.name, candidate.name))
                log.warning("unit %s could not serve %s (%s); trying the next one", candidate.name, source.name, exc)
    raise SiliconlabError(f"no unit could serve '{source.name}': {'; '.join(failures) or 'none available here'}")


def _candidates(source: Any, unit: str, cache: Path) -> tuple[list[Any], str]:
    from siliconlab.bench.machine import machine_info
    from siliconlab.convert.pipeline import model_folder_name
    from siliconlab.tasks.best import ranked_units
    from siliconlab.units import REGISTRY, get_unit

    if unit != "best":
        chosen = get_unit(unit)
        available = chosen.availability()
        if not available.ok:
            raise UsageError(f"unit '{unit}' cannot run here: {available.reason}")
        return [chosen], "chosen by the caller"
    names, why = ranked_units(cache / model_folder_name(source), machine_info())
    units = [REGISTRY[n]() for n in names if n in REGISTRY]
    return [u for u in units if u.availability().ok], why


def _load_on(source: Any, unit: Any, cache: Path, threads: int, why: str) -> Loaded:
    from transformers import AutoTokenizer

    from siliconlab.convert.pipeline import Converter, load_artifact
    from siliconlab.models.base import head_spec, max_length_of

    outcome = Converter(source, cache, threads).convert_unit(unit)
    if not outcome.ok:
        raise SiliconlabError(outcome.error or f"conversion for {unit.name} failed")
    assert outcome.artifact_dir is not None  # ok: converted or reused, so the folder exists
    runner, _ = load_artifact(outcome.artifact_dir, unit, threads)
    tokenizer = AutoTokenizer.from_pretrained(outcome.artifact_dir, trust_remote_code=False)
    task = "classification" if "logits" in runner.output_names else "embedding"
    labels = labels_of(source.config) if task == "classification" else []
    limit = max_length_of(source.config, tokenizer)
    truncation = (head_spec(source.config) or {}).get("truncation", "head")
    return Loaded(source.name, task, unit.name, runner, tokenizer, limit, outcome.artifact_dir, labels, why,
                  truncation)  # fmt: skip


def labels_of(config: Any) -> list[str]:
    """Class names in logit order: our head's labels, else the config's id2label."""
    from siliconlab.models.base import head_spec

    head = head_spec(config)
    if head is not None:
        return list(head["labels"])
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label[key]) for key in sorted(id2label, key=int)]
