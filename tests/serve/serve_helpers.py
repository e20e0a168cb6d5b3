"""Helpers the serving tests share: the unit they use, KServe v2 JSON bodies, cosine similarity."""

from __future__ import annotations

from typing import Any

import numpy as np

#: fp32 ONNX Runtime: answers independent of batch neighbours up to float rounding (cosine >= 0.99999).
UNIT = "onnxruntime-cpu-fp32"


def text_body(texts: list[Any], name: str = "text") -> dict[str, Any]:
    """The KServe v2 JSON body a curl user would send: texts as a [n, 1] BYTES tensor."""
    return {"inputs": [{"name": name, "shape": [len(texts), 1], "datatype": "BYTES", "data": texts}]}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
