"""A text is checked and tokenized once per request on every path (API, serve, batch), as TEI and infinity do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

UNIT = "torch-cpu-fp32"
TEXTS = ["the first text", "a second, longer text than the first", "third"]


class CountingTokenizer:
    """The real tokenizer, counting its calls (attribute reads such as pad_token_id pass through)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer, self.calls = tokenizer, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


@pytest.fixture
def counted(tiny_bert: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import siliconlab

    monkeypatch.setenv("SILICONLAB_CACHE", str(artifact_cache))
    pipeline = siliconlab.load(str(tiny_bert), unit=UNIT)
    real = pipeline.loaded.tokenizer
    yield pipeline
    pipeline.loaded.tokenizer = real


def _count(pipeline: Any) -> CountingTokenizer:
    counter = CountingTokenizer(pipeline.loaded.tokenizer)
    pipeline.loaded.tokenizer = counter
    return counter


def test_the_api_tokenizes_a_list_once(counted: Any) -> None:
    counter = _count(counted)
    vectors = counted.encode(TEXTS)
    assert counter.calls == 1 and vectors.shape[0] == len(TEXTS)


def test_serve_tokenizes_each_request_once_and_runs_the_batch_together(counted: Any) -> None:
    from siliconlab.serve.models import bindings_for

    binding = bindings_for("tiny", counted)[0]
    counter = _count(counted)
    runs: list[int] = []
    real_run = counted.loaded.runner.run
    counted.loaded.runner.run = lambda ids, mask: runs.append(len(ids)) or real_run(ids, mask)
    try:
        answers = binding.infer([{"text": np.array([[t.encode()] for t in TEXTS], dtype=object)},
                                 {"text": np.array([[b"one more"]], dtype=object)}])  # fmt: skip
    finally:
        counted.loaded.runner.run = real_run
    assert counter.calls == 2 and runs == [len(TEXTS) + 1]  # one tokenizer call per request, one runner call
    np.testing.assert_allclose(answers[0]["embedding"], counted.encode(TEXTS), atol=1e-5)


def test_batch_tokenizes_a_chunk_once(counted: Any, tiny_bert: Path) -> None:
    from siliconlab.batch.task import TaskRunner

    runner = TaskRunner(str(tiny_bert), UNIT, 8192, threads=None)
    counter = _count(runner.pipeline)
    try:
        outcome = runner.run([*TEXTS, ""])
    finally:
        runner.pipeline.loaded.tokenizer = counter.tokenizer
    assert counter.calls == 1 and outcome.good == [0, 1, 2] and "empty" in outcome.errors[3]
