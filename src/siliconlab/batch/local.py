"""The local engine: one process, one unit, the input streamed chunk by chunk, each chunk committed atomically.

Rerunning the same command after a crash or Ctrl-C skips the chunks the journal holds and redoes the rest;
chunks are fixed row ranges and batches are planned from a chunk's own rows, so the output is the same, bit
for bit, as an uninterrupted run's.
"""

from __future__ import annotations

from siliconlab.batch.io import Chunk, Format, fsync_replace, open_format
from siliconlab.batch.job import (
    Clock,
    JobOptions,
    JobResult,
    OnProgress,
    OnStart,
    check_paths,
    error_lines,
    finish,
    finished_unit,
    record_done,
    refuse_existing,
)
from siliconlab.batch.journal import Journal, fingerprint
from siliconlab.batch.npy import NpyOutput
from siliconlab.batch.task import TaskRunner
from siliconlab.errors import UsageError

_RUNNERS: dict[tuple[str, str, int | None], TaskRunner] = {}


def task_runner(model: str, unit: str, budget: int, threads: int | None = None) -> TaskRunner:
    """A loaded model, kept per (model, unit, threads) so several jobs in one process load it once."""
    key = (model, unit, threads)
    if key not in _RUNNERS:
        runner = TaskRunner(model, unit, budget, threads)
        _RUNNERS[key] = _RUNNERS[(model, runner.unit, threads)] = runner
    runner = _RUNNERS[key]
    runner.budget = budget
    return runner


def run_job(options: JobOptions, on_progress: OnProgress | None = None, on_start: OnStart | None = None) -> JobResult:
    """Run (or resume) a batch job; returns what was written. Bad options raise UsageError before any work."""
    check_paths(options)
    command = options.command()
    stamp = fingerprint(command, options.input)
    journal = Journal.open(options.out, stamp, command)
    if options.out.exists():
        if journal is not None and journal.state.get("assembled"):
            journal.remove()  # the previous run wrote the output and stopped before cleaning up
            record_done(options.out, stamp, journal.unit)
            return JobResult(options.out, journal.unit, note="already complete: the output was written before")
        finished = finished_unit(options.out, stamp)
        if finished is not None:
            note = "already complete: this command wrote it from this input (--overwrite runs it again)"
            return JobResult(options.out, finished, note=note)
        refuse_existing(options.out)
    runner = task_runner(
        options.model, journal.unit if journal else options.unit, options.tokens_per_batch, options.threads
    )
    handler = open_format(options.input, options.text_field, runner.task, runner.labels)
    if options.out.suffix.lower() == ".npy":
        if runner.task != "embedding":
            raise UsageError(f"--out .npy holds embeddings; '{options.model}' is a {runner.task} model")
        handler = NpyOutput(handler)
    if journal is None:
        journal = Journal.create(options.out, stamp, command, runner.unit)
    result = JobResult(options.out, runner.unit)
    done = journal.done
    if on_start is not None:
        on_start(handler.total, handler.progress_unit, sum(v["rows"] for v in done.values()))
    clock = Clock()
    for chunk in handler.chunks(options.chunk_rows, set(done)):
        if chunk.index in done:
            result.resumed_rows += chunk.count
            result.written += done[chunk.index]["kept"]
            result.errors += done[chunk.index]["errors"]
        else:
            _run_chunk(runner, handler, journal, chunk, options.text_field, result)
        result.rows += chunk.count
        if on_progress is not None:
            on_progress(result.rows, chunk.position)
    indices = sorted(journal.done)
    journal.state["assembled"] = True
    journal.save()
    result.errors_file = finish(
        handler,
        [journal.part(i, handler.name) for i in indices],
        [journal.part(i, "errors.jsonl") for i in indices],
        options.out,
    )
    journal.remove()
    record_done(options.out, stamp, runner.unit)
    result.seconds = clock.seconds()
    return result


def _run_chunk(
    runner: TaskRunner, handler: Format | NpyOutput, journal: Journal, chunk: Chunk, field: str, result: JobResult
) -> None:
    """Answer one chunk and commit it: part files (temp, fsync, rename), then the journal line."""
    usable = [i for i in range(chunk.count) if i not in chunk.problems]
    outcome = runner.run([chunk.texts[i] for i in usable], field)
    good = [usable[g] for g in outcome.good]
    errors = dict(chunk.problems)
    errors.update({usable[i]: reason for i, reason in outcome.errors.items()})
    data, failed = journal.part(chunk.index, handler.name), journal.part(chunk.index, "errors.jsonl")
    data_tmp, failed_tmp = data.with_name(data.name + ".tmp"), failed.with_name(failed.name + ".tmp")
    handler.write_part(data_tmp, chunk, good, outcome.columns)
    failed_tmp.write_text(error_lines(chunk.start, errors), encoding="utf-8")
    fsync_replace(data_tmp, data)
    fsync_replace(failed_tmp, failed)
    journal.commit(chunk.index, chunk.count, len(good), len(errors))
    result.written += len(good)
    result.errors += len(errors)
    result.truncated += outcome.truncated
    result.shapes.extend(outcome.shapes)
