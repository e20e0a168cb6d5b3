"""The model side of a batch job: texts in, result columns out, on one unit, batched to a token budget.

It stands on `siliconlab.load` (unit choice, parity-gated artifact) and calls the unit's runner directly with
batches the bucketing plan forms, post-processing as the pipelines do: embeddings come L2-normalised from the
`sentence_embedding` output; classifier logits go through a softmax to label, score and every class's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siliconlab.batch.bucketing import DEFAULT_TOKENS_PER_BATCH, arrival_batches, plan_batches
from siliconlab.errors import UsageError
from siliconlab.text import check_text

#: Result columns per task, in output order.
RESULT_COLUMNS = {"embedding": ("embedding",), "classification": ("label", "score", "scores")}


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

        if budget < 2:
            raise UsageError(f"--tokens-per-batch must be >= 2, got {budget}")
        pipeline = load(model, unit=unit, threads=threads)
        if pipeline.task not in RESULT_COLUMNS:
            raise UsageError(
                f"model '{model}' is a {pipeline.task} model; batch runs embedding or classification models"
            )
        self.model = model
        self.loaded = pipeline.loaded
        self.task = pipeline.task
        self.unit = pipeline.unit
        self.budget = budget
        self.output = "sentence_embedding" if self.task == "embedding" else "logits"
        self.labels = list(self.loaded.labels)
        self.pad_id = int(self.loaded.tokenizer.pad_token_id or 0)

    @property
    def columns(self) -> tuple[str, ...]:
        return RESULT_COLUMNS[self.task]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated to the model's limit, no padding (the plan pads per batch)."""
        return self.loaded.tokenizer(texts, truncation=True, max_length=self.loaded.max_length)["input_ids"]

    def run(self, texts: list[Any], field_name: str = "text", arrival: int | None = None) -> Outcome:
        """Answers for `texts`; a bad item (not a str, empty, undecodable) gets a reason instead of a result.

        `arrival=N` batches N rows at a time in input order instead of by length (the benchmark's baseline).
        """
        outcome = Outcome()
        checked: list[str] = []
        for index, text in enumerate(texts):
            try:
                checked.append(check_text(text, f"field '{field_name}'"))
                outcome.good.append(index)
            except UsageError as exc:
                outcome.errors[index] = str(exc)
        if not checked:
            outcome.columns = {name: [] for name in self.columns}
            return outcome
        ids = self.token_ids(checked)
        lengths = [len(row) for row in ids]
        outcome.truncated = sum(length >= self.loaded.max_length for length in lengths)
        # A runner whose answers depend on their batch (dynamic int8: one activation scale per tensor) says
        # tokens_per_call == 1; it gets each text alone, as load() and its parity gate run it.
        alone = getattr(self.loaded.runner, "tokens_per_call", None) == 1
        batches = arrival_batches(lengths, arrival) if arrival else plan_batches(lengths, 1 if alone else self.budget)
        values = np.empty((len(checked), 0), dtype=np.float32)
        for batch in batches:
            width = max(lengths[i] for i in batch)
            input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                input_ids[row, : lengths[index]] = ids[index]
                mask[row, : lengths[index]] = 1
            out = np.asarray(self.loaded.runner.run(input_ids, mask)[self.output], dtype=np.float32)
            if values.shape[1] != out.shape[1]:
                values = np.empty((len(checked), out.shape[1]), dtype=np.float32)
            values[batch] = out
            outcome.shapes.append((len(batch), width))
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():  # JSON cannot hold NaN or infinity, and no reader should get them as a result
            for position in np.flatnonzero(~finite):
                outcome.errors[outcome.good[position]] = "the model's output for this text is not finite (NaN or inf)"
            outcome.good = [index for index, ok in zip(outcome.good, finite) if ok]
            values = values[finite]
        outcome.columns = self._columns(values)
        return outcome

    def _columns(self, values: np.ndarray) -> dict[str, list[Any]]:
        if self.task == "embedding":
            return {"embedding": list(values)}
        from siliconlab.tasks.pipeline import softmax

        labels = self.labels or [f"LABEL_{i}" for i in range(values.shape[1])]
        probs = softmax(values.astype(np.float64))
        best = probs.argmax(axis=1)
        return {
            "label": [labels[i] for i in best],
            "score": [float(p[i]) for p, i in zip(probs, best)],
            "scores": [{name: float(v) for name, v in zip(labels, p)} for p in probs],
        }
