"""One lean Ray test: the same small JSONL file through the local engine and through Ray Data (a local Ray)
gives the same rows in the same order with the same embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siliconlab.batch.job import JobOptions
from siliconlab.batch.local import run_job

UNIT = "onnxruntime-cpu-int8"


def test_ray_output_equals_the_local_engine(tmp_path: Path, texts: list[str], runner: object) -> None:
    pytest.importorskip("ray.data", reason="ray[data] is not installed (the batch extra)")
    from siliconlab.batch import ray_engine

    source = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": t} for i, t in enumerate(texts[:24])]
    rows.insert(5, {"id": 99, "text": ""})  # a failing row: in the errors file on both engines, at the same row
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    # one chunk of 64 rows on both engines: the same batches, so int8 results match closely
    local = run_job(JobOptions("minilm", source, tmp_path / "local.jsonl", unit=UNIT, chunk_rows=64))
    ray = ray_engine.run_job(JobOptions("minilm", source, tmp_path / "ray.jsonl", unit=UNIT, chunk_rows=64))
    assert (ray.rows, ray.written, ray.errors) == (local.rows, local.written, local.errors) == (25, 24, 1)
    assert ray.unit == local.unit == UNIT
    ours = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in theirs] == [(r["id"], r["text"]) for r in ours]
    np.testing.assert_allclose([r["embedding"] for r in theirs], [r["embedding"] for r in ours], atol=1e-5)
    errors = [json.loads(line) for line in (tmp_path / "ray.jsonl.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [5] and "empty" in errors[0]["reason"]
