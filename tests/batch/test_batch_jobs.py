"""Batch jobs in this process (the model loads once): formats, bad rows, empty input, existing outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from siliconlab.batch.job import JobOptions
from siliconlab.batch.local import run_job
from siliconlab.cli import app

UNIT = "onnxruntime-cpu-int8"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _cli(*args: str) -> object:
    return CliRunner().invoke(app, ["batch", *args])


def test_three_formats_round_trip_with_the_same_results(tmp_path: Path, texts: list[str], runner: object) -> None:
    frame = pd.DataFrame({"id": range(40), "text": texts[:40], "note": [f'n,{i}\n"q"' for i in range(40)]})
    _jsonl(tmp_path / "in.jsonl", frame.to_dict("records"))
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_parquet(tmp_path / "in.parquet")
    vectors = {}
    for kind in ("jsonl", "csv", "parquet"):
        result = run_job(
            JobOptions("minilm", tmp_path / f"in.{kind}", tmp_path / f"out.{kind}", unit=UNIT, chunk_rows=16)
        )
        assert (result.rows, result.written, result.errors, result.errors_file) == (40, 40, 0, None)
        if kind == "jsonl":
            rows = _read_jsonl(tmp_path / "out.jsonl")
            back = pd.DataFrame(rows)
            vectors[kind] = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        elif kind == "csv":
            back = pd.read_csv(tmp_path / "out.csv")
            vectors[kind] = np.asarray([json.loads(v) for v in back["embedding"]], dtype=np.float32)
        else:
            table = pq.read_table(tmp_path / "out.parquet")
            kind_of = table.schema.field("embedding").type
            assert pa.types.is_list(kind_of) and kind_of.value_type == pa.float32()
            back = table.to_pandas()
            vectors[kind] = np.stack(back["embedding"].to_numpy()).astype(np.float32)
        pd.testing.assert_frame_equal(back[["id", "text", "note"]], frame, check_dtype=False)
        assert not (tmp_path / f"out.{kind}.parts").exists()
    assert vectors["jsonl"].shape == (40, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors["jsonl"], axis=1), 1.0, atol=1e-3)
    assert np.array_equal(vectors["jsonl"], vectors["csv"]) and np.array_equal(vectors["jsonl"], vectors["parquet"])


def test_bad_rows_go_to_the_errors_file_and_the_job_goes_on(tmp_path: Path, texts: list[str], runner: object) -> None:
    good = [json.dumps({"text": t}).encode() for t in texts[:5]]
    lines = [good[0], b"{not json", good[1], b'{"body": "no text field"}', b'{"text": "   "}', b'{"text": 7}',
             b'{"text": "caf\xff"}', b"", good[2], b"[1, 2]", good[3], good[4]]  # fmt: skip
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = _cli(
        "minilm",
        "--input",
        str(tmp_path / "in.jsonl"),
        "--out",
        str(tmp_path / "out.jsonl"),
        "--unit",
        UNIT,
        "--chunk-rows",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in _read_jsonl(tmp_path / "out.jsonl")] == texts[:5]
    errors = _read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["row"] for e in errors] == [1, 3, 4, 5, 6, 8]  # the blank line is not a row
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in (
        "not valid JSON",
        "no field 'text'",
        "is empty",
        "must be a string",
        "not valid UTF-8",
        "not a JSON object",
    ):
        assert expected in reasons


def test_empty_input_gives_a_valid_empty_output(tmp_path: Path, runner: object) -> None:
    (tmp_path / "in.jsonl").write_text("\n\n")
    result = _cli("minilm", "--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out.jsonl"), "--unit", UNIT)
    assert result.exit_code == 0 and "no rows" in result.output
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(tmp_path / "in.parquet")
    run_job(JobOptions("minilm", tmp_path / "in.parquet", tmp_path / "out.parquet", unit=UNIT))
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 0 and table.schema.names == ["text", "embedding"]


def test_an_existing_output_is_refused_unless_overwrite(tmp_path: Path, texts: list[str], runner: object) -> None:
    _jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts[:3]])
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    args = ["minilm", "--input", str(tmp_path / "in.jsonl"), "--out", str(out), "--unit", UNIT]
    refused = _cli(*args)
    assert refused.exit_code != 0 and "--overwrite" in refused.output and "Traceback" not in refused.output
    assert out.read_text() == "keep me\n"
    assert _cli(*args, "--overwrite").exit_code == 0
    assert len(_read_jsonl(out)) == 3
    written = out.read_bytes()
    again = _cli(*args)  # the same command again: the job is done, not an error
    assert again.exit_code == 0 and "already complete" in again.output and out.read_bytes() == written
    out.write_text("edited by hand\n")  # an output changed since: no longer this job's, refused as before
    assert _cli(*args).exit_code != 0 and out.read_text() == "edited by hand\n"


def test_a_journal_of_another_job_is_refused(tmp_path: Path, texts: list[str], runner: object) -> None:
    _jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts[:3]])
    out = tmp_path / "out.jsonl"
    from siliconlab.batch.journal import Journal, fingerprint, input_digest

    other = JobOptions("minilm", tmp_path / "in.jsonl", out, text_field="body", unit=UNIT)
    Journal.create(out, fingerprint(other.command(), input_digest(other.input)), other.command(), UNIT)
    refused = _cli("minilm", "--input", str(tmp_path / "in.jsonl"), "--out", str(out), "--unit", UNIT)
    assert refused.exit_code != 0 and "different command or input" in refused.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "out", "message"),
    [("in.txt", "out.txt", "format comes from the suffix"), ("in.jsonl", "out.csv", "like the input"),
     ("missing.jsonl", "out.jsonl", "no such input file")],
)  # fmt: skip
def test_bad_paths_are_one_line(tmp_path: Path, name: str, out: str, message: str) -> None:
    for path in (tmp_path / "in.txt", tmp_path / "in.jsonl"):
        path.write_text('{"text": "x"}\n')
    result = _cli("minilm", "--input", str(tmp_path / name), "--out", str(tmp_path / out))
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_a_classifier_writes_label_score_and_scores(tmp_path: Path, texts: list[str]) -> None:
    frame = pd.DataFrame({"text": texts[:6]})
    frame.to_parquet(tmp_path / "in.parquet")
    run_job(JobOptions("spam", tmp_path / "in.parquet", tmp_path / "out.parquet", unit=UNIT))
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    for row in table:
        assert row["label"] in ("ham", "spam")
        assert set(row["scores"]) == {"ham", "spam"} and abs(sum(row["scores"].values()) - 1) < 1e-6
        assert row["score"] == max(row["scores"].values())


def test_an_embedding_job_writes_npy_like_embed(tmp_path: Path, texts: list[str], runner: object) -> None:
    """`--out X.npy`: one float32 row per input row, in order, NaN where a row had no text; the same vectors as
    JSONL output, and as `siliconlab embed --out X.npy` gives for the same texts."""
    rows = [{"text": t} for t in texts[:20]]
    rows[5] = {"text": ""}
    _jsonl(tmp_path / "in.jsonl", rows)
    result = run_job(JobOptions("minilm", tmp_path / "in.jsonl", tmp_path / "out.npy", unit=UNIT, chunk_rows=8))
    assert (result.rows, result.written, result.errors) == (20, 19, 1)
    matrix = np.load(tmp_path / "out.npy")
    assert matrix.shape == (20, 384) and matrix.dtype == np.float32
    assert np.isnan(matrix[5]).all() and not np.isnan(np.delete(matrix, 5, axis=0)).any()
    run_job(JobOptions("minilm", tmp_path / "in.jsonl", tmp_path / "out.jsonl", unit=UNIT, chunk_rows=8))
    listed = np.asarray([r["embedding"] for r in _read_jsonl(tmp_path / "out.jsonl")], dtype=np.float32)
    np.testing.assert_array_equal(np.delete(matrix, 5, axis=0), listed)
    good = [t for i, t in enumerate(texts[:20]) if i != 5]
    embedded = CliRunner().invoke(app, ["embed", *good, "--out", str(tmp_path / "embed.npy"), "--unit", UNIT])
    assert embedded.exit_code == 0, embedded.output
    # Dynamic int8 runs each text alone in batch jobs too (as embed, load() and the parity gate run it): same bits.
    np.testing.assert_array_equal(np.load(tmp_path / "embed.npy"), listed)
    refused = _cli("spam", "--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "labels.npy"), "--unit", UNIT)
    assert refused.exit_code != 0 and "holds embeddings" in refused.output
