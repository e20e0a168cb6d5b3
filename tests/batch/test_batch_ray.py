"""One lean Ray test on a local Ray (one node with the physical cores: 2 here): a job interrupted on the local
engine and finished by the Ray engine gives the local engine's output file, byte for byte, and the same errors
file. minilm on onnxruntime-cpu-int8 quantises activations per batch, so equal bytes prove the actor formed the
same batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siliconlab.batch.job import JobOptions
from siliconlab.batch.local import run_job

UNIT = "onnxruntime-cpu-int8"


def test_ray_output_equals_the_local_engine(tmp_path: Path, texts: list[str], runner: object) -> None:
    pytest.importorskip("ray", reason="ray is not installed (the batch extra)")
    from siliconlab.batch import ray_engine

    source = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": t} for i, t in enumerate(texts[:24])]
    rows.insert(5, {"id": 99, "text": ""})  # a failing row: in the errors file on both engines, at the same row
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    # the local Ray has one node with the physical cores: one actor with that many threads, the local default
    local = run_job(JobOptions("minilm", source, tmp_path / "local.jsonl", unit=UNIT, chunk_rows=8))

    def interrupt(rows: int, position: float) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the first chunk's commit

    options = JobOptions("minilm", source, tmp_path / "ray.jsonl", unit=UNIT, chunk_rows=8)
    with pytest.raises(KeyboardInterrupt):
        run_job(options, on_progress=interrupt)
    ray = ray_engine.run_job(options)  # the same command on the other engine resumes the local engine's parts
    assert (ray.rows, ray.written, ray.errors) == (local.rows, local.written, local.errors) == (25, 24, 1)
    assert ray.resumed_rows == 8 and ray.unit == local.unit == UNIT
    assert ray.nodes == {next(iter(ray.nodes)): 17}  # one node (this machine) answered the other 17 rows
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    errors = (tmp_path / "ray.jsonl.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "local.jsonl.errors.jsonl").read_bytes()
    assert [json.loads(line)["row"] for line in errors.splitlines()] == [5]
