"""A task defined only here, registered with one call, works through load, eval, batch and serve.

"sign": a model's sentence embedding answered as one of two labels by the sign of one component (high when
>= 0), with that component as the score. No module of siliconlab names it; every front asks the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from siliconlab.tasks.pipeline import Pipeline, as_list
from siliconlab.tasks.task import Column, Task

UNIT = "torch-cpu-fp32"
TEXTS = ["a fine, moving film", "dull and tedious", "hello there", "the cat sat on the mat", "rain again today",
         "what a match that was", "numbers and letters", "I would not go back"]  # fmt: skip


#: The component judged: on the tiny test encoder its sign differs across TEXTS (the first one's does not).
DIM = 2


def _sign_answers(values: np.ndarray) -> dict[str, list[Any]]:
    return {"label": ["high" if v[DIM] >= 0 else "low" for v in values], "score": [float(v[DIM]) for v in values]}


class SignPipeline(Pipeline):
    task = "sign"
    methods = ("judge",)

    def judge(self, texts: Any) -> list[dict[str, Any]]:
        items, _ = as_list(texts)
        values, errors = self.run_texts(items, "sentence_embedding")
        assert values is not None and not errors
        answers = _sign_answers(values)
        return [{"label": label, "score": score} for label, score in zip(answers["label"], answers["score"])]


class SignTask(Task):
    name = "sign"
    pipeline_class = SignPipeline
    output = "sentence_embedding"

    def __init__(self, model: str):
        self.models = (model,)

    def columns(self, labels: list[str], width: int) -> list[Column]:
        return [Column("label", "str"), Column("score", "float")]

    def answer(self, values: np.ndarray, labels: list[str]) -> dict[str, list[Any]]:
        return _sign_answers(values)

    def answer_labels(self, pipeline: Pipeline) -> list[str]:
        return ["low", "high"]

    def predict(self, pipeline: Pipeline, texts: list[str]) -> list[str | None]:
        return [answer["label"] for answer in pipeline.judge(texts)]


@pytest.fixture(scope="module")
def sign_model(tiny_bert: Path, artifact_cache: Path) -> Any:
    """The tiny encoder registered as a "sign" model (one call), with the artifact store in the test's cache."""
    from siliconlab.tasks.registry import register, unregister

    patch = pytest.MonkeyPatch()
    patch.setenv("SILICONLAB_CACHE", str(artifact_cache))
    register(SignTask(str(tiny_bert)))
    yield str(tiny_bert)
    unregister("sign")
    patch.undo()


@pytest.fixture(scope="module")
def expected(sign_model: str) -> dict[str, list[Any]]:
    """What the model's plain embeddings say, through the embedding pipeline on the same artifact."""
    import siliconlab
    from siliconlab.tasks.embedding import EmbeddingPipeline

    loaded = siliconlab.load(sign_model, unit=UNIT).loaded
    return _sign_answers(EmbeddingPipeline(loaded).encode(TEXTS))


def test_load_gives_the_registered_task_pipeline(sign_model: str, expected: dict[str, list[Any]]) -> None:
    import siliconlab
    from siliconlab.tasks.registry import task_of

    pipeline = siliconlab.load(sign_model, unit=UNIT)
    assert isinstance(pipeline, SignPipeline) and task_of(pipeline).name == "sign"
    assert [a["label"] for a in pipeline.judge(TEXTS)] == expected["label"]
    assert len(set(expected["label"])) == 2  # both labels occur, so the checks below can tell them apart


def test_eval_measures_the_task(sign_model: str, expected: dict[str, list[Any]]) -> None:
    from siliconlab.tasks.eval import EvalData, evaluate

    truth = list(expected["label"])
    truth[0] = "low" if truth[0] == "high" else "high"  # one wrong answer: accuracy is measured, not assumed
    result = evaluate(sign_model, [], EvalData(TEXTS, truth, "eight texts"), threads=1)
    (row,) = result["results"]
    assert row["unit"] == UNIT and row["accuracy"] == pytest.approx(7 / 8)
    assert row["confusion"]["labels"] == ["low", "high"]


def test_batch_writes_the_task_columns(sign_model: str, expected: dict[str, list[Any]], tmp_path: Path) -> None:
    from siliconlab.batch.job import JobOptions
    from siliconlab.batch.local import run_job

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate([*TEXTS, ""])))
    result = run_job(JobOptions(sign_model, source, tmp_path / "out.jsonl", unit=UNIT, threads=1))
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert result.errors == 1 and [r["id"] for r in rows] == list(range(len(TEXTS)))
    assert [r["label"] for r in rows] == expected["label"]
    np.testing.assert_allclose([r["score"] for r in rows], expected["score"], rtol=1e-4, atol=1e-6)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": TEXTS}), tmp_path / "in.parquet")
    run_job(JobOptions(sign_model, tmp_path / "in.parquet", tmp_path / "out.parquet", unit=UNIT, threads=1))
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("label").type == pa.string() and table.column("label").to_pylist() == expected["label"]


def test_serve_binds_the_task_columns(sign_model: str, expected: dict[str, list[Any]]) -> None:
    import siliconlab
    from siliconlab.serve.models import ERROR_KEY, bindings_for

    (binding,) = bindings_for("sign", siliconlab.load(sign_model, unit=UNIT))
    assert [s.name for s in binding.outputs] == ["label", "score", "tokens", "truncated"] and binding.task == "sign"
    requests = [{"text": np.array([[t.encode()] for t in TEXTS[:5]], dtype=object)},
                {"text": np.array([[b""]], dtype=object)},
                {"text": np.array([[t.encode()] for t in TEXTS[5:]], dtype=object)}]  # fmt: skip
    good, bad, rest = binding.infer(requests)
    assert "empty" in bad[ERROR_KEY][0].decode()
    labels = [row[0].decode() for row in np.concatenate([good["label"], rest["label"]])]
    assert labels == expected["label"]
    scores = np.concatenate([good["score"], rest["score"]])[:, 0]
    np.testing.assert_allclose(scores, expected["score"], rtol=1e-4, atol=1e-6)
