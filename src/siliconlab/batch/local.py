"""The local engine: one process, one unit, the input streamed chunk by chunk, each chunk committed atomically.

Rerunning the same command after a crash or Ctrl-C skips the chunks the journal holds and redoes the rest;
chunks are fixed row ranges and batches are planned from a chunk's own rows, so the output is the same, bit
for bit, as an uninterrupted run's.
"""

from __future__ import annotations

from siliconlab.batch.io import Chunk, Format, open_format
from siliconlab.batch.job import (
    Clock,
    JobOptions,
    JobResult,
    OnProgress,
    OnStart,
    check_paths,
    commit_chunk,
    complete,
    exclusive_output,
    open_resume,
    start_over,
    usable_rows,
)
from siliconlab.batch.journal import Journal
from siliconlab.batch.npy import NpyOutput
from siliconlab.batch.task import TaskRunner

_RUNNERS: dict[tuple[str | None, str, str, int | None], TaskRunner] = {}


def task_runner(model: str, unit: str, budget: int, threads: int | None = None) -> TaskRunner:
    """A loaded model, kept per (claiming task, model, unit, threads) so several jobs in one process load it
    once; the task is in the key because a task registered later may claim a model already loaded as another."""
    from siliconlab.tasks.registry import task_claiming

    claimed = task_claiming(model)
    task = claimed.name if claimed is not None else None
    key = (task, model, unit, threads)
    if key not in _RUNNERS:
        runner = TaskRunner(model, unit, budget, threads)
        _RUNNERS[key] = _RUNNERS[(task, model, runner.unit, threads)] = runner
    runner = _RUNNERS[key]
    runner.budget = budget
    return runner


def run_job(options: JobOptions, on_progress: OnProgress | None = None, on_start: OnStart | None = None) -> JobResult:
    """Run (or resume) a batch job; returns what was written. Bad options raise UsageError before any work.
    The job holds its output's lock throughout: a second job on the same --out is refused."""
    check_paths(options)
    with exclusive_output(options.out):
        start_over(options)
        return _run_locked(options, on_progress, on_start)


def _run_locked(options: JobOptions, on_progress: OnProgress | None, on_start: OnStart | None) -> JobResult:
    resume = open_resume(options)
    if isinstance(resume, JobResult):
        return resume
    journal = resume.journal
    runner = task_runner(
        options.model, journal.unit if journal else options.unit, options.tokens_per_batch, options.threads
    )
    reader = open_format(options.input, options.text_field, runner.task, runner.labels)
    handler: Format | NpyOutput = reader
    if options.out.suffix.lower() == ".npy":
        handler = NpyOutput(reader)
    if journal is None:
        journal = Journal.create(options.out, resume.stamp, resume.command, runner.unit)
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
    result.errors_file = complete(options, handler, journal, resume.identity)
    result.seconds = clock.seconds()
    return result


def _run_chunk(
    runner: TaskRunner, handler: Format | NpyOutput, journal: Journal, chunk: Chunk, field: str, result: JobResult
) -> None:
    """Answer one chunk and commit it (job.commit_chunk: part files, then the journal line)."""
    usable, texts = usable_rows(chunk)
    outcome = runner.run(texts, field)
    kept, errors = commit_chunk(handler, journal, chunk, usable, outcome)
    result.written += kept
    result.errors += errors
    result.truncated += outcome.truncated
    result.shapes.extend(outcome.shapes)
