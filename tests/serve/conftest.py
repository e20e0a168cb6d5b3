"""Shared fixtures for the serving tests: the real MiniLM (and sentiment) pipelines on onnxruntime-cpu-fp32.

fp32 ONNX Runtime is used because its answers do not depend on batch neighbours beyond float rounding
(cosine >= 0.99999), so every served answer can be checked against the pipeline called directly. The artifacts
live in the default store, so after the first run (about 20 s per model to convert) loading takes seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from serve_helpers import UNIT


@pytest.fixture(scope="session")
def minilm() -> Any:
    import siliconlab

    return siliconlab.load("minilm", unit=UNIT)


@pytest.fixture(scope="session")
def sentiment() -> Any:
    import siliconlab

    return siliconlab.load("sentiment", unit=UNIT)
