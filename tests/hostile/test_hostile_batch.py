"""`siliconlab batch` under hostile use (issue 24): competing jobs, inputs changed behind its back, and inputs
and paths built to break it. Every case ends in one line and a non-zero exit, or an errors-file row; nothing
already produced is lost; never a traceback.

The model is a tiny random BERT on torch-cpu-fp32 in a per-session cache, so each job takes a second.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.batch.job import JobOptions, exclusive_output, lock_path
from siliconlab.batch.local import run_job
from siliconlab.cli import app
from siliconlab.errors import UsageError

UNIT = "torch-cpu-fp32"


@pytest.fixture(autouse=True)
def _cache(artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILICONLAB_CACHE", str(artifact_cache))


def _rows(count: int, prefix: str = "row") -> list[dict]:
    verdicts = ("dull", "good")
    return [{"id": i, "text": f"{prefix} {i}: the film was {verdicts[i % 2]} and long"} for i in range(count)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _batch(model: Path, source: Path, out: Path, *extra: str) -> object:
    args = ["batch", str(model), "--input", str(source), "--out", str(out), "--unit", UNIT, *extra]
    return CliRunner().invoke(app, args)


def _one_line_error(result: object, code: int | None = None) -> str:
    """The error line of a refused run: non-zero exit, no traceback, exactly one `error:` line."""
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code != 0, output  # type: ignore[attr-defined]
    if code is not None:
        assert result.exit_code == code, output  # type: ignore[attr-defined]
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


# -- competing jobs (issue 24, item 1) --------------------------------------------------------------------------


def test_a_second_job_on_an_output_a_job_holds_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"
    with exclusive_output(out):  # what a running job holds
        line = _one_line_error(_batch(tiny_bert, source, out), code=2)
        assert "another batch job" in line and "out.jsonl" in line
        assert not out.exists() and not (tmp_path / "out.jsonl.parts").exists()
    assert _batch(tiny_bert, source, out).exit_code == 0  # released: the job runs
    assert len(_read(out)) == 6 and not lock_path(out).exists()


def test_two_processes_on_one_output_never_mix_their_rows(
    tiny_bert: Path, tmp_path: Path, artifact_cache: Path
) -> None:
    """Job A (slow: one row per chunk) runs in a process; job B on the same --out, other input, is refused while
    A runs; A's output holds A's rows only (before: B assembled A's parts and reported success)."""
    first = _jsonl(tmp_path / "a.jsonl", _rows(200, "alpha"))
    second = _jsonl(tmp_path / "b.jsonl", _rows(200, "beta"))
    out = tmp_path / "out.jsonl"
    assert _batch(tiny_bert, first, tmp_path / "warm.jsonl").exit_code == 0  # converted once, before timing
    env = {**os.environ, "SILICONLAB_CACHE": str(artifact_cache), "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "siliconlab", "batch", str(tiny_bert), "--input", str(first), "--out", str(out),
               "--unit", UNIT, "--chunk-rows", "1"]  # fmt: skip
    job_a = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = tmp_path / "out.jsonl.parts" / "journal.json"
    deadline = time.monotonic() + 120
    while not journal.exists() and job_a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job_a.poll() is None, "job A ended before job B could start"
    line = _one_line_error(_batch(tiny_bert, second, out), code=2)
    assert "another batch job" in line
    refused_overwrite = _batch(tiny_bert, second, out, "--overwrite")  # --overwrite must not pull A's parts away
    assert "another batch job" in _one_line_error(refused_overwrite, code=2)
    _, stderr = job_a.communicate(timeout=300)
    assert job_a.returncode == 0, stderr.decode()
    assert [row["text"] for row in _read(out)] == [row["text"] for row in _rows(200, "alpha")]


# -- an input changed behind the job's back (item 2) ------------------------------------------------------------


def _interrupted_after_first_chunk(options: JobOptions) -> None:
    def stop(rows: int, _position: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(options, on_progress=stop)
    assert (options.out.parent / (options.out.name + ".parts") / "journal.json").exists()


def test_resume_refuses_an_input_edited_with_its_size_and_mtime_restored(tiny_bert: Path, tmp_path: Path) -> None:
    """`cp -p` / `rsync -t` keep size and mtime: the content decides, not the stat."""
    source = _jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"
    _interrupted_after_first_chunk(JobOptions(str(tiny_bert), source, out, unit=UNIT, chunk_rows=2))
    before = source.stat()
    edited = source.read_bytes().replace(b"row 0: the film", b"ROW 0: THE FILM")
    assert len(edited) == before.st_size
    source.write_bytes(edited)
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    line = _one_line_error(_batch(tiny_bert, source, out, "--chunk-rows", "2"), code=2)
    assert "changed since the unfinished run" in line and "--overwrite" in line
    assert not out.exists() and (tmp_path / "out.jsonl.parts" / "journal.json").exists()  # nothing discarded
    assert _batch(tiny_bert, source, out, "--chunk-rows", "2", "--overwrite").exit_code == 0
    assert _read(out)[0]["text"].startswith("ROW 0: THE FILM")


def test_an_unchanged_input_still_resumes(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"
    _interrupted_after_first_chunk(JobOptions(str(tiny_bert), source, out, unit=UNIT, chunk_rows=2))
    os.utime(source)  # touched, not changed: a resume is still right
    result = _batch(tiny_bert, source, out, "--chunk-rows", "2")
    assert result.exit_code == 0 and "resumed from an earlier run" in result.output, result.output
    assert [row["id"] for row in _read(out)] == list(range(6))


def test_an_input_edited_while_the_job_runs_is_not_assembled(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"

    def edit(rows: int, _position: float) -> None:
        if rows == 2:
            _jsonl(source, _rows(6, "other"))

    with pytest.raises(UsageError, match="changed while the job ran"):
        run_job(JobOptions(str(tiny_bert), source, out, unit=UNIT, chunk_rows=2), on_progress=edit)
    assert not out.exists()
    line = _one_line_error(_batch(tiny_bert, source, out, "--chunk-rows", "2"), code=2)
    assert "changed since the unfinished run" in line


# -- rows that must land in the errors file (items 9, 11) -------------------------------------------------------


def test_hostile_jsonl_rows_go_to_the_errors_file_and_reruns_do_not_die(tiny_bert: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "a fine first row"}).encode(),
        b'{"text": "\\ud800"}',  # a lone surrogate (JSON escape)
        b'{"text": "big", "x": 1e400}',  # reads as inf, would be written back as Infinity
        b'{"text": "nan", "x": NaN}',  # Python's json reads it; JSON does not have it
        b'{"text": "a\x00b"}',  # a raw NUL inside a string: not JSON
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion
        b'{"text": ["a", "list"]}',
        b'{"text": {"nested": "object"}}',
        b'{"text": null}',
        b'{"text": true}',
        b'{"text": "latin-1 caf\xe9"}',
        b'{"text": "' + b"long " * 200_000 + b'"}',  # 1 MB text: answered, truncated
        json.dumps({"text": "a fine last row", "note": "\ud800"}).encode(),  # a surrogate elsewhere is kept
    ]  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    result = _batch(tiny_bert, source, out, "--chunk-rows", "4")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    written = out.read_text(encoding="ascii")  # ASCII-escaped: valid JSON everywhere
    assert "Infinity" not in written and "NaN" not in written
    rows = [json.loads(line) for line in written.splitlines()]
    assert [row["text"][:15] for row in rows] == ["a fine first ro", "long long long ", "a fine last row"]
    assert rows[2]["note"] == "\ud800"
    errors = {e["row"]: e["reason"] for e in _read(tmp_path / "out.jsonl.errors.jsonl")}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "lone surrogate U+D800" in errors[1]
    assert "1e400 is beyond float range" in errors[2]
    assert "NaN is not a JSON number" in errors[3]
    assert "holds NUL bytes" in errors[4]
    assert "nested too deeply" in errors[5]
    assert all("must be a string" in errors[i] for i in (6, 7, 8, 9))
    assert "not valid UTF-8" in errors[10]
    assert all("\n" not in reason and len(reason) < 300 for reason in errors.values())
    assert "Traceback" not in _batch(tiny_bert, source, out).output  # a rerun: refused (exists), not a crash


def test_a_byte_order_mark_is_not_a_bad_first_row(tiny_bert: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in _rows(3)).encode())
    assert _batch(tiny_bert, jsonl, tmp_path / "out.jsonl").exit_code == 0
    assert [row["id"] for row in _read(tmp_path / "out.jsonl")] == [0, 1, 2]
    csv_in = tmp_path / "in.csv"
    csv_in.write_bytes(b"\xef\xbb\xbfid,text\r\n0,first text\r\n1,second text\r\n")
    result = _batch(tiny_bert, csv_in, tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "id,text,embedding"


@pytest.mark.parametrize("newline", [b"\r", b"\r\n", b"\n"], ids=["CR only", "CRLF", "LF"])
def test_csv_with_any_line_ending_is_read_record_by_record(tiny_bert: Path, tmp_path: Path, newline: bytes) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(newline.join([b"id,text", b"0,first text", b'1,"quoted, with a comma"', b"2,third"]) + newline)
    result = _batch(tiny_bert, source, tmp_path / "out.csv")
    assert result.exit_code == 0 and "3 of 3 rows" in result.output, result.output


def test_csv_cells_with_nul_and_undecodable_bytes(tiny_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n0,nul\x00inside\n1,caf\xe9\n2,fine text\n3,too,many\n")
    result = _batch(tiny_bert, source, tmp_path / "out.csv")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    errors = {e["row"]: e["reason"] for e in _read(tmp_path / "out.csv.errors.jsonl")}
    assert sorted(errors) == [1, 3] and "not valid UTF-8" in errors[1] and "3 cells" in errors[3]


def test_a_job_where_every_row_fails_exits_non_zero(tiny_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": ""}\n{"text": 5}\n{"body": "x"}\n')
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "out.jsonl"), code=1)
    assert "none of the 3 rows" in line and "errors.jsonl" in line
    assert len(_read(tmp_path / "out.jsonl.errors.jsonl")) == 3


# -- paths built to break it -----------------------------------------------------------------------------------


def test_outputs_that_would_destroy_the_input_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    keep = source.read_bytes()
    (tmp_path / "sub").mkdir()
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "sub" / ".." / "in.jsonl", "--overwrite"), code=2)
    assert "is the input file" in line
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    assert "is the input file" in _one_line_error(_batch(tiny_bert, source, link, "--overwrite"), code=2)
    errors_named = _jsonl(tmp_path / "x.jsonl.errors.jsonl", _rows(3))
    line = _one_line_error(_batch(tiny_bert, errors_named, tmp_path / "x.jsonl", "--overwrite"), code=2)
    assert "errors file of --out" in line and errors_named.exists()
    parts = tmp_path / "y.jsonl.parts"
    parts.mkdir()
    inside = _jsonl(parts / "in.jsonl", _rows(3))
    line = _one_line_error(_batch(tiny_bert, inside, tmp_path / "y.jsonl", "--overwrite"), code=2)
    assert "which the job writes and removes" in line and inside.exists()
    assert source.read_bytes() == keep


def test_a_symlinked_output_is_replaced_never_written_through(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    out.symlink_to(victim)
    assert "--overwrite" in _one_line_error(_batch(tiny_bert, source, out), code=2)
    assert _batch(tiny_bert, source, out, "--overwrite").exit_code == 0
    assert victim.read_text() == "precious\n" and not out.is_symlink() and len(_read(out)) == 3
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "target.jsonl")
    assert _batch(tiny_bert, source, dangling).exit_code == 0
    assert not dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_parts_folder_that_is_a_symlink_is_not_emptied(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work\n")
    (tmp_path / "out.jsonl.parts").symlink_to(precious)
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "out.jsonl", "--overwrite"), code=2)
    assert "is a symbolic link" in line
    assert (precious / "thesis.txt").read_text() == "years of work\n"


def test_an_output_under_a_file_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    (tmp_path / "plain").write_text("a file, not a folder\n")
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "plain" / "deeper" / "out.jsonl"), code=2)
    assert "plain is a file, not a folder" in line


def test_a_read_only_output_folder_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _one_line_error(_batch(tiny_bert, source, locked / "out.jsonl"))
        assert "Permission denied" in line
    finally:
        locked.chmod(0o755)


def test_a_full_disk_mid_job_keeps_the_committed_chunks(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the third chunk's commit: one line, exit 1; the two chunks before it are kept and resumed."""
    import siliconlab.batch.job as job  # chunk commits (both engines)

    source = _jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out.jsonl"
    real = job.fsync_replace
    calls = []

    def full_disk(tmp: Path, path: Path) -> None:
        calls.append(path)
        if len(calls) == 5:  # two files per chunk: the third chunk's data part
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        real(tmp, path)

    monkeypatch.setattr(job, "fsync_replace", full_disk)
    line = _one_line_error(_batch(tiny_bert, source, out, "--chunk-rows", "2"), code=1)
    assert "No space left on device" in line
    monkeypatch.setattr(job, "fsync_replace", real)
    result = _batch(tiny_bert, source, out, "--chunk-rows", "2")
    assert result.exit_code == 0 and "4 resumed from an earlier run" in result.output, result.output
    assert [row["id"] for row in _read(out)] == list(range(6))


def test_a_corrupt_journal_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    for payload in ("{not json", "[1, 2]", '"a string"'):
        (parts / "journal.json").write_text(payload)
        line = _one_line_error(_batch(tiny_bert, source, tmp_path / "out.jsonl"), code=2)
        assert "--overwrite" in line


def test_inputs_that_are_not_regular_files_are_refused_before_any_read(tiny_bert: Path, tmp_path: Path) -> None:
    """A device or a FIFO behind a .jsonl name would be hashed (or read) forever: refused at once."""
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    for source in (zero, fifo, tmp_path):
        line = _one_line_error(_batch(tiny_bert, source, tmp_path / "out.jsonl"), code=2)
        assert "is not a file" in line or "format comes from the suffix" in line


def test_parquet_text_columns_of_other_types_go_to_the_errors_file(tiny_bert: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [0, 1, 2, 3], "text": pa.array([b"fine bytes", b"caf\xe9", None, b"more fine"])})
    pq.write_table(table, tmp_path / "in.parquet")
    result = _batch(tiny_bert, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert result.exit_code == 0 and "2 of 4 rows" in result.output, result.output
    errors = {e["row"]: e["reason"] for e in _read(tmp_path / "out.parquet.errors.jsonl")}
    assert "not valid UTF-8" in errors[1] and "is null" in errors[2]
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "ints.parquet")
    line = _one_line_error(_batch(tiny_bert, tmp_path / "ints.parquet", tmp_path / "ints-out.parquet"), code=1)
    assert "none of the 2 rows" in line
    assert "must be a string, got int" in (tmp_path / "ints-out.parquet.errors.jsonl").read_text()


def test_a_number_too_long_to_read_is_a_row_error(tiny_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "ok"}\n{"text": "x", "n": ' + b"9" * 5000 + b"}\n")
    result = _batch(tiny_bert, source, tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    (error,) = _read(tmp_path / "out.jsonl.errors.jsonl")
    assert error["row"] == 1 and "not valid JSON" in error["reason"]


def test_numbers_in_other_fields_are_written_back_as_they_were_written(tiny_bert: Path, tmp_path: Path) -> None:
    """A float would turn 1e-400 into 0.0, 1E5 into 100000.0 and cut 20 digits to 17: the fields come back as text."""
    fields = ['"a": 1e-400', '"b": [1E5, 0.1, -0.0, 1.0e0, 0.10000000000000000001]', '"c": {"d": 2.5e-320}',
              '"e": 123456789012345678901234567890', '"f": 3.14']  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"text": "row {i}", {field}}}\n' for i, field in enumerate(fields)))
    out = tmp_path / "out.jsonl"
    result = _batch(tiny_bert, source, out, "--chunk-rows", "2")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == len(fields) and not (tmp_path / "out.jsonl.errors.jsonl").exists()
    for line, field in zip(lines, fields):
        assert field in line, (field, line[:200])
        json.loads(line)  # still JSON


def test_a_number_as_the_text_is_a_row_error_not_a_crash(tiny_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"text": "ok"}\n{"text": 1E5}\n')
    result = _batch(tiny_bert, source, tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    (error,) = _read(tmp_path / "out.jsonl.errors.jsonl")
    assert error["row"] == 1 and "must be a string, got float" in error["reason"]


def test_a_row_the_model_answers_with_nan_goes_to_the_errors_file(tiny_bert: Path, tmp_path: Path) -> None:
    """A unit that returns NaN for one text (a broken artifact, an overflow): that row is an errors-file row,
    never `NaN` in the JSONL output."""
    import numpy as np

    from siliconlab.batch.local import task_runner

    runner = task_runner(str(tiny_bert), UNIT, 8192)
    poison = runner.loaded.tokenizer.convert_tokens_to_ids("poison")
    real = runner.loaded.runner

    class Poisoned:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def run(self, ids: np.ndarray, mask: np.ndarray) -> dict:
            out = {k: np.array(v, dtype=np.float32) for k, v in real.run(ids, mask).items()}
            out["sentence_embedding"][(ids == poison).any(axis=1)] = np.nan
            return out

    runner.loaded.runner = Poisoned()
    try:
        source = _jsonl(tmp_path / "in.jsonl", [{"text": "a fine text"}, {"text": "poison"}, {"text": "fine too"}])
        result = _batch(tiny_bert, source, tmp_path / "out.jsonl")
    finally:
        runner.loaded.runner = real
    assert result.exit_code == 0 and "2 of 3 rows" in result.output, result.output
    assert "NaN" not in (tmp_path / "out.jsonl").read_text()
    (error,) = _read(tmp_path / "out.jsonl.errors.jsonl")
    assert error["row"] == 1 and "not finite" in error["reason"]


def test_the_jsonl_writer_never_writes_infinity() -> None:
    """Rows the Ray engine's Arrow reader parsed (1e400 -> inf) reach the writer unchecked: one line, no file
    with `Infinity` in it."""
    from siliconlab.batch.io import Chunk, JsonlFormat
    from siliconlab.errors import SiliconlabError

    writer = JsonlFormat.__new__(JsonlFormat)
    chunk = Chunk(0, 10, 1, rows=[{"text": "x", "n": float("inf")}])
    with pytest.raises(SiliconlabError, match="row 10 holds a number JSON cannot write"):
        writer.write_part(Path(os.devnull), chunk, [0], {"embedding": [[0.5]]})


def test_a_link_planted_at_the_lock_name_is_not_followed(tiny_bert: Path, tmp_path: Path) -> None:
    """Another user of a shared folder links `.out.jsonl.lock` to your file: the job refuses in one line and the
    file is neither truncated nor written."""
    source = _jsonl(tmp_path / "in.jsonl", _rows(3))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    lock_path(out).symlink_to(victim)
    line = _one_line_error(_batch(tiny_bert, source, out), code=1)
    assert "symbolic links" in line or "lock" in line
    assert victim.read_text() == "precious\n" and not out.exists()


def test_a_utf16_file_is_every_row_failing_not_a_crash(tiny_bert: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes("".join(json.dumps(r) + "\n" for r in _rows(3)).encode("utf-16"))
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "out.jsonl"), code=1)
    assert "none of the 4 rows" in line  # the last line is the NUL byte of UTF-16's final newline
    reasons = [e["reason"] for e in _read(tmp_path / "out.jsonl.errors.jsonl")]
    assert len(reasons) == 4 and all("holds NUL bytes: batch reads UTF-8 (is the file UTF-16" in r for r in reasons)


def test_links_planted_at_temp_file_names_are_never_written_through(tiny_bert: Path, tmp_path: Path) -> None:
    """A re-test planted `.out.jsonl.errors.jsonl.tmp -> victim` (and a part's temp name): the job wrote its error
    lines into the victim. Temp files are now claimed (old entry removed, new file created O_EXCL|O_NOFOLLOW)."""
    source = _jsonl(tmp_path / "in.jsonl", [{"text": "good text"}, {"text": ""}, {"text": 5}])
    out = tmp_path / "out.jsonl"
    victims = {name: tmp_path / f"victim-{i}.txt" for i, name in enumerate(
        (".out.jsonl.errors.jsonl.tmp", f".out.jsonl.tmp-{os.getpid()}"))}  # fmt: skip
    for name, victim in victims.items():
        victim.write_text("precious\n")
        (tmp_path / name).symlink_to(victim)
    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    part_victim = tmp_path / "victim-part.txt"
    part_victim.write_text("precious\n")
    (parts / "part-0000000.jsonl.tmp").symlink_to(part_victim)
    (parts / "part-0000000.errors.jsonl.tmp").symlink_to(part_victim)
    result = _batch(tiny_bert, source, out)
    assert result.exit_code == 0, result.output
    for victim in (*victims.values(), part_victim):
        assert victim.read_text() == "precious\n", victim
    assert not out.is_symlink() and len(_read(out)) == 1
    errors = out.with_name("out.jsonl.errors.jsonl")
    assert not errors.is_symlink() and len(_read(errors)) == 2


def test_parquet_with_a_repeated_column_name_is_one_line(tiny_bert: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays(
        [pa.array([1, 2]), pa.array(["a", "b"]), pa.array(["c", "d"])], names=["id", "text", "text"]
    )
    pq.write_table(table, source)
    line = _one_line_error(_batch(tiny_bert, source, tmp_path / "o.parquet"), code=2)
    assert "more than one column named 'text'" in line and not (tmp_path / "o.parquet.parts").exists()
