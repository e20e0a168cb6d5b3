"""The model side of a batch job: texts in, result columns out, on one unit, batched to a token budget.

It stands on `siliconlab.load` (unit choice, parity-gated artifact): the pipeline checks and tokenizes each
text once (`prepare`) and runs the batches the bucketing plan forms (`run_prepared`); the model's task turns
the outputs into its answer columns (embedding; label, score, scores; or a registered task's own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.tasks.bucketing import DEFAULT_TOKENS_PER_BATCH, arrival_batches, plan_batches

if TYPE_CHECKING:
    from siliconlab.tasks.task import Task


def check_batchable(model: str, task: Task) -> None:
    """Batch runs tasks that answer each text from the runner's output (embedding, classification, ...)."""
    if task.output is None or not task.columns([], 0):
        raise UsageError(f"model '{model}' is a {task.name} model; batch runs models with one answer per text "
                         "(embedding or classification models)")  # fmt: skip


@dataclass
class Outcome:
    """One call's answers: results per good row (same order as `good`), reasons per bad row, shapes run."""

    good: list[int] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    shapes: list[tuple[int, int]] = field(default_factory=list)  # (rows, padded length) per runner call
    truncated: int = 0


class TaskRunner:
    """A loaded task model that answers lists of texts in token-budget batches."""

    def __init__(
        self, model: str, unit: str = "best", budget: int = DEFAULT_TOKENS_PER_BATCH, threads: int | None = None
    ):
        from siliconlab.tasks import load
        from siliconlab.tasks.registry import task_of

        if budget < 2:
            raise UsageError(f"--tokens-per-batch must be >= 2, got {budget}")
        pipeline = load(model, unit=unit, threads=threads)
        self.task = task_of(pipeline)
        check_batchable(model, self.task)
        self.model = model
        self.pipeline = pipeline
        self.loaded = pipeline.loaded
        self.unit = pipeline.unit
        self.budget = budget
        self.labels = list(self.loaded.labels)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.task.columns(self.labels, 0))

    def run(self, texts: list[Any], field_name: str = "text", arrival: int | None = None) -> Outcome:
        """Answers for `texts`; a bad item (not a str, empty, undecodable) gets a reason instead of a result.

        `arrival=N` batches N rows at a time in input order instead of by length (the benchmark's baseline).
        """
        prepared = self.pipeline.prepare(texts, f"field '{field_name}'")
        outcome = Outcome(good=list(prepared.good), errors=dict(prepared.errors))
        if not prepared.rows:
            outcome.columns = {name: [] for name in self.columns}
            return outcome
        lengths = [len(row) for row in prepared.rows]
        outcome.truncated = sum(prepared.truncated)
        # A runner whose answers depend on their batch (dynamic int8: one activation scale per tensor) says
        # tokens_per_call == 1; it gets each text alone, as load() and its parity gate run it.
        alone = getattr(self.loaded.runner, "tokens_per_call", None) == 1
        batches = arrival_batches(lengths, arrival) if arrival else plan_batches(lengths, 1 if alone else self.budget)
        values = self.pipeline.run_prepared(prepared, self.task.output or "", batches)
        outcome.shapes = [(len(batch), max(lengths[i] for i in batch)) for batch in batches]
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():  # JSON cannot hold NaN or infinity, and no reader should get them as a result
            for position in np.flatnonzero(~finite):
                outcome.errors[outcome.good[position]] = "the model's output for this text is not finite (NaN or inf)"
            outcome.good = [index for index, ok in zip(outcome.good, finite) if ok]
            values = values[finite]
        outcome.columns = self.task.answer(values, self.labels)
        return outcome
