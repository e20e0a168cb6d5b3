"""The Task interface: what a task takes, what it answers, and how every front runs it.

A task is one object registered once (tasks/registry.py). `siliconlab.load` asks the registry which task a model
name is and lets the task build its pipeline; eval asks the task for labels; batch writes the task's answer
columns; serve binds the same columns as Triton outputs. So a new task is one module and one `register()` line,
and no front names a task. The model underneath is described by its head (models/base.py `Head`), which the
lower layers (units, convert) read instead of a task's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.errors import UsageError

if TYPE_CHECKING:
    from siliconlab.tasks.pipeline import Loaded, Pipeline, Prepared


@dataclass(frozen=True)
class Column:
    """One answer per text, as batch writes it and serve returns it: a string, a number or a float32 vector.

    `width` is the vector's length (None: one value); `keys` names a per-label map's entries (batch writes a
    struct / JSON object, serve a float32 vector in that order)."""

    name: str
    kind: str  # "str" | "float" | "vector" | "map"
    width: int | None = None
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Loading:
    """What a task's `load` may call (tasks/loader.py passes them): the whole `load(name, unit, cache, threads)`
    (chat-retrieval stands on minilm's pipeline), `load_unit` (an encoder on a parity-gated unit) and
    `first_serving` (any kind's source on its named unit or its ranked candidates)."""

    load: Callable[..., Pipeline]
    load_unit: Callable[..., Loaded]
    first_serving: Callable[..., Any]


class Task:
    """A task. Subclasses set the class attributes and override what differs from these defaults."""

    #: the registry's key, and what `pipeline.task` and error messages say
    name = "?"
    #: the pipeline class this task's models load as (the registry maps a pipeline back to its task by it)
    pipeline_class: type[Pipeline] | None = None
    #: built-in model names this task answers for (`siliconlab models`, batch's driver without loading weights)
    models: tuple[str, ...] = ()
    #: the model head (models/base.HEADS) whose encoders are this task unless a task claims them by name
    head: str | None = None
    #: the runner output batch and serve read ("sentence_embedding", "logits"); None: neither runs this task
    output: str | None = None
    #: a model whose pipeline this task's pipeline wraps (chat-retrieval: minilm); serve shares a served one
    stands_on: str | None = None
    #: serve: a streaming (decoupled) Triton model rather than a batched one
    streaming = False
    #: serve: also a `<name>-ids` model taking token ids (the runner's output by ids, no tokenizer)
    token_ids_model = False
    #: serve: answers OpenAI's /v1/embeddings
    openai_embeddings = False

    # -- load -----------------------------------------------------------------------------------------------

    def claims(self, name: str) -> bool:
        """Whether `siliconlab.load(name)` is this task before any weights load (by name; folders by head)."""
        return name in self.models

    def load(self, name: str, unit: str, cache: Path | None, threads: int | None, using: Loading) -> Pipeline:
        return self.pipeline(using.load_unit(name, unit, cache, threads))

    def pipeline(self, loaded: Loaded) -> Pipeline:
        if self.pipeline_class is None:
            raise UsageError(f"the {self.name} task has no pipeline over a unit's artifact")
        return self.pipeline_class(loaded)

    def over(self, pipeline: Pipeline) -> Pipeline:
        """This task's pipeline on a loaded pipeline of `stands_on`."""
        raise UsageError(f"the {self.name} task stands on no other model")

    def labels(self, config: Any) -> list[str]:
        """The class names a model of this task answers with, from its config (none by default)."""
        return []

    # -- answers (batch and serve) --------------------------------------------------------------------------

    def columns(self, labels: list[str], width: int) -> list[Column]:
        """The answer columns for a model with these labels and output width; none: batch refuses the task."""
        return []

    def answer(self, values: np.ndarray, labels: list[str]) -> dict[str, list[Any]]:
        """The answer columns from the runner's `output` rows (one per text)."""
        raise UsageError(f"the {self.name} task has no per-text answers")

    def serve_answer(self, pipeline: Pipeline, prepared: Prepared) -> dict[str, list[Any]]:
        """serve's answers for prepared texts: the runner's output through `answer` unless a task differs."""
        if self.output is None:
            raise UsageError(f"the {self.name} task has no per-text answers")
        return self.answer(pipeline.run_prepared(prepared, self.output), pipeline.loaded.labels)

    # -- eval -----------------------------------------------------------------------------------------------

    @property
    def evaluable(self) -> bool:
        """Whether `siliconlab eval` can measure this task's models (it answers labels)."""
        return type(self).predict is not Task.predict

    def answer_labels(self, pipeline: Pipeline) -> list[str]:
        """The labels `predict` answers with (eval checks the data's labels against them)."""
        return list(pipeline.loaded.labels)

    def predict(self, pipeline: Pipeline, texts: list[str]) -> list[str | None]:
        """One label per text (None: not answered), for `siliconlab eval`."""
        raise UsageError(f"model '{pipeline.model}' is a {self.name} model: eval needs a model that answers labels")


def label_columns(labels: list[str]) -> list[Column]:
    """label, score and every class's score: the columns of any task that answers one class per text."""
    return [Column("label", "str"), Column("score", "float"), Column("scores", "map", keys=tuple(labels))]


def label_answers(labels: list[str], probs: np.ndarray) -> dict[str, list[Any]]:
    """The label columns from class probabilities (one row per text)."""
    names = labels or [f"LABEL_{i}" for i in range(probs.shape[1])]
    best = probs.argmax(axis=1)
    return {
        "label": [names[i] for i in best],
        "score": [float(p[i]) for p, i in zip(probs, best)],
        "scores": [{name: float(v) for name, v in zip(names, p)} for p in probs],
    }
