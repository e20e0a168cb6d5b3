"""Small files of real texts (SMS + movie reviews) and one loaded model shared by every batch test.

The unit is onnxruntime-cpu-int8 on minilm: the fastest CPU unit here, and the one whose results depend on
batch neighbours (activations are quantised per batch), so it is the unit that proves batches are re-formed
identically on resume.
"""

from __future__ import annotations

import pytest

UNIT = "onnxruntime-cpu-int8"
MODEL = "minilm"


@pytest.fixture(scope="session")
def texts() -> list[str]:
    """96 real texts: SMS messages and the first 400 characters of movie reviews, interleaved."""
    from siliconlab.data.tasks import labelled

    sms = labelled("spam")["text"].head(64).tolist()
    reviews = [t[:400] for t in labelled("sentiment")["text"].head(32)]
    mixed = []
    for index, text in enumerate(sms):
        mixed.append(text)
        if index % 2 == 1:
            mixed.append(reviews[index // 2])
    return mixed


@pytest.fixture(scope="session")
def runner():  # noqa: ANN201 - a TaskRunner, loaded once per session
    from siliconlab.batch.local import task_runner

    return task_runner(MODEL, UNIT, 8192)
