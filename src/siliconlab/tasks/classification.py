"""Classification (sentiment, spam, your classifier): one label per text, with its probability and every class's."""

from __future__ import annotations

from typing import Any

import numpy as np

from siliconlab.tasks.pipeline import ClassifierPipeline, Pipeline, softmax
from siliconlab.tasks.task import Column, Task, label_answers, label_columns


class ClassificationTask(Task):
    name = "classification"
    pipeline_class = ClassifierPipeline
    models = ("sentiment", "spam")
    head = "classification"
    output = "logits"

    def labels(self, config: Any) -> list[str]:
        from siliconlab.models.base import labels_of

        return labels_of(config)

    def columns(self, labels: list[str], width: int) -> list[Column]:
        return label_columns(labels or [f"LABEL_{i}" for i in range(width)])

    def answer(self, values: np.ndarray, labels: list[str]) -> dict[str, list[Any]]:
        return label_answers(labels, softmax(values.astype(np.float64)))

    def predict(self, pipeline: Pipeline, texts: list[str]) -> list[str | None]:
        return [answer["label"] for answer in pipeline.classify(texts)]
