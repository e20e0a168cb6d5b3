"""`siliconlab.load(name, unit)`: a model name -> a ready pipeline on a parity-gated unit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.models.base import labels_of
from siliconlab.progress import ProgressCallback
from siliconlab.tasks.pipeline import Loaded, Pipeline
from siliconlab.tasks.registry import task_claiming, task_for_head, task_models
from siliconlab.tasks.task import Loading

#: Built-in task model names and what they do (any local directory works too: its config says which task).
TASK_MODELS = task_models()

#: (model, unit) pairs whose "could not serve" warning was already said in this process.
_WARNED: set[tuple[str, str]] = set()

__all__ = ["TASK_MODELS", "labels_of", "load", "load_unit"]


def load(
    name: str = "minilm",
    unit: str = "best",
    cache: Path | None = None,
    threads: int | None = None,
    progress: bool | ProgressCallback | None = None,
) -> Pipeline:
    """A pipeline for `name` on `unit` ("best" or a unit name); converts and checks parity on first use.

    `progress`: quiet by default, as sentence-transformers is (a library prints nothing it was not asked to; each
    finished stage is an INFO record on the `siliconlab.progress` logger); True draws the first run's stages
    (convert, calibrate, parity check, load) on stderr with a measured ETA; a callable gets every
    `siliconlab.progress.StageEvent`."""
    from contextlib import nullcontext

    from siliconlab.log import quiet_loading
    from siliconlab.progress import reporting, shown_stages

    shown: Any = nullcontext()
    if progress is True:
        shown = shown_stages()
    elif callable(progress):
        shown = reporting(progress)
    with quiet_loading(), shown:
        return _load(name, unit, cache, threads)


def _load(name: str, unit: str, cache: Path | None, threads: int | None) -> Pipeline:
    """The task claiming `name` loads it; else an encoder on a unit, as the task of its head."""
    using = Loading(_load, load_unit, first_serving)
    task = task_claiming(name)
    if task is not None:
        return task.load(name, unit, cache, threads, using)
    loaded = load_unit(name, unit, cache, threads)
    return task_for_head(loaded.task).pipeline(loaded)


def load_unit(name: str, unit: str = "best", cache: Path | None = None, threads: int | None = None) -> Loaded:
    from siliconlab.models import resolve

    return first_serving(resolve(name), unit, cache, threads, _load_on)


Opened = TypeVar("Opened")


def first_serving(source: Any, unit: str, cache: Path | None, threads: int | None,
                  open_on: Callable[[Any, Any, Path, int, str], Opened]) -> Opened:  # fmt: skip
    """`open_on(source, unit, cache, threads, why)` on the named unit, or for "best" on each candidate in the
    kind's ranking (tasks/best.py) until one converts, passes parity and loads: the one loop of every kind."""
    from siliconlab.bench.machine import default_threads
    from siliconlab.paths import default_cache

    if threads is not None and threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    cache = Path(cache) if cache is not None else default_cache()
    threads = threads or default_threads()
    failures: list[str] = []
    candidates, why = _candidates(source, unit, cache)
    for candidate in candidates:
        try:
            return open_on(source, candidate, cache, threads, why)
        except SiliconlabError as exc:
            if unit != "best":
                raise
            failures.append(f"{candidate.name}: {exc}")
            if (source.name, candidate.name) not in _WARNED:  # once per process, however many loads retry it
                _WARNED.add((source.name, candidate.name))
                log.warning("unit %s could not serve %s (%s); trying the next one", candidate.name, source.name, exc)
    raise SiliconlabError(f"no unit could serve '{source.name}': {'; '.join(failures) or 'none available here'}")


def _candidates(source: Any, unit: str, cache: Path) -> tuple[list[Any], str]:
    from siliconlab.convert.pipeline import model_folder_name
    from siliconlab.models import kind_of
    from siliconlab.tasks.best import candidates

    return candidates(kind_of(source), unit, cache / model_folder_name(source))


def _load_on(source: Any, unit: Any, cache: Path, threads: int, why: str) -> Loaded:
    from transformers import AutoTokenizer

    from siliconlab.convert.pipeline import Converter, load_artifact
    from siliconlab.models.base import head_for_outputs, head_spec, max_length_of
    from siliconlab.progress import stage

    outcome = Converter(source, cache, threads).convert_unit(unit)
    if not outcome.ok:
        raise SiliconlabError(outcome.error or f"conversion for {unit.name} failed")
    assert outcome.artifact_dir is not None  # ok: converted or reused, so the folder exists
    with stage(f"{source.name} {unit.name}: load"):
        runner, _ = load_artifact(outcome.artifact_dir, unit, threads)
        tokenizer = AutoTokenizer.from_pretrained(outcome.artifact_dir, trust_remote_code=False)
    head = head_for_outputs(runner.output_names)
    labels = labels_of(source.config) if head.classifier else []
    limit = max_length_of(source.config, tokenizer)
    truncation = (head_spec(source.config) or {}).get("truncation", "head")
    return Loaded(source.name, head.name, unit.name, runner, tokenizer, limit, outcome.artifact_dir, labels, why,
                  truncation)  # fmt: skip
