"""Triton Python-backend model: a classifier's logits -> label (BYTES), score and scores (FP32).

Copied into an exported repository as `<model>-postprocess/1/model.py`. The labels come from the config's
`labels` parameter (JSON list, logit order), written at export time from the model's own config. The softmax
is computed in float64 like siliconlab's ClassifierPipeline, so both answer the same.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

try:  # present inside Triton's Python backend only
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - imported outside Triton (docs, linters)
    pb_utils = None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class TritonPythonModel:
    """Softmax and label lookup per request; the embedding task needs no post-processor (the graph pools)."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.labels = [str(label) for label in json.loads(config["parameters"]["labels"]["string_value"])]

    def answer(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs = softmax(logits)
        best = probs.argmax(axis=-1)
        labels = np.array([[self.labels[i].encode("utf-8")] for i in best], dtype=np.object_)
        score = probs[np.arange(len(best)), best].astype(np.float32).reshape(-1, 1)
        return labels, score, probs.astype(np.float32)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            logits = pb_utils.get_input_tensor_by_name(request, "logits").as_numpy()
            labels, score, scores = self.answer(logits)
            tensors = [
                pb_utils.Tensor("label", labels),
                pb_utils.Tensor("score", score),
                pb_utils.Tensor("scores", scores),
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
