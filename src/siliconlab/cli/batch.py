"""`siliconlab batch`: a task model over a whole file (JSONL, CSV, Parquet), locally or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from siliconlab.cli.common import CacheOption, console, err, handles_errors, use_cache
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.tasks.bucketing import DEFAULT_CHUNK_ROWS, DEFAULT_TOKENS_PER_BATCH

if TYPE_CHECKING:
    from rich.progress import TaskID

ENGINES = ("local", "ray")


@handles_errors
def batch(
    model: Annotated[
        str, typer.Argument(help="minilm (embeddings), sentiment or spam (classifiers), or a local model directory.")
    ],
    input_file: Annotated[Path, typer.Option("--input", help="A .jsonl, .csv or .parquet file, read streamed.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output: the input's format (input rows + results), or .npy (embeddings, one row per row)."
        ),
    ],
    text_field: Annotated[str, typer.Option("--text-field", help="The column/field holding the text.")] = "text",
    unit: Annotated[
        str, typer.Option("--unit", help="A unit name, or 'best' (fastest stable unit benched here).")
    ] = "best",
    tokens_per_batch: Annotated[
        int, typer.Option("--tokens-per-batch", help="Padded tokens per runner call (rows x longest).")
    ] = DEFAULT_TOKENS_PER_BATCH,
    engine: Annotated[
        str, typer.Option("--engine", help="local, or ray (Ray actors; a local Ray unless --address); both resume.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (ray://host:10001 or auto); --engine ray only.")
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(
            "--actors",
            help="Ray actors, each loading the unit once (default: one per node using its CPUs, or one per GPU "
            "for a GPU unit); --engine ray only.",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output (and discard an unfinished job's parts).")
    ] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", hidden=True, help="Rows per commit and bucketing window.")
    ] = DEFAULT_CHUNK_ROWS,
    cache: CacheOption = None,
) -> None:
    """Run a task model over a file: embeddings or labels for every row, length-bucketed, resumable after a crash."""
    from siliconlab.batch.job import JobOptions

    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    if address is not None and engine != "ray":
        raise UsageError("--address needs --engine ray")
    if actors is not None and engine != "ray":
        raise UsageError("--actors needs --engine ray")
    if actors is not None and actors < 1:
        raise UsageError(f"--actors must be >= 1, got {actors}")
    use_cache(cache)  # the actors' store too: they inherit $SILICONLAB_CACHE
    options = JobOptions(
        model, input_file, out, text_field, unit,
        tokens_per_batch, chunk_rows, overwrite,
    )  # fmt: skip
    with _Bar() as bar:
        try:
            if engine == "ray":
                from siliconlab.batch.ray_engine import run_job as run_ray

                result = run_ray(options, address=address, actors=actors, on_progress=bar.update, on_start=bar.start)
            else:
                from siliconlab.batch.local import run_job

                result = run_job(options, on_progress=bar.update, on_start=bar.start)
        except KeyboardInterrupt:
            bar.stop()
            err.print("[yellow]interrupted[/]: committed chunks are kept; rerun the same command to resume")
            raise typer.Exit(130) from None
    _report(result)
    if result.rows and not result.written:
        raise SiliconlabError(
            f"none of the {result.rows} rows could be answered: the output holds no row; "
            f"reasons in {result.errors_file}"
        )


def _report(result: Any) -> None:
    if result.note:
        console.print(f"{result.out}: {result.note}", highlight=False)
        return
    if result.rows == 0:
        console.print(f"the input has no rows: wrote an empty {result.out}", highlight=False)
        return
    resumed = f", {result.resumed_rows} resumed from an earlier run" if result.resumed_rows else ""
    console.print(
        f"{result.written} of {result.rows} rows -> {result.out} on {result.unit} "
        f"({result.rows_per_s:.1f} rows/s, {result.seconds:.1f} s{resumed})",
        highlight=False,
    )
    if result.nodes:  # Ray: what ran where; rates over the time after the actors were ready
        working = result.seconds - result.startup_s
        console.print(f"  Ray start + actors loading the unit: {result.startup_s:.1f} s", highlight=False)
    for node, rows in sorted(result.nodes.items(), key=lambda item: -item[1]):
        rate = rows / working if working > 0 else 0.0
        console.print(f"  node {node}: {rows} rows ({rate:.1f} rows/s)", highlight=False)
    for node, chunks in result.lost.items():
        err.print(
            f"[yellow]the actor on node {node} was lost[/]: {chunks} chunk(s) redone on the others", highlight=False
        )
    if result.truncated:
        console.print(
            f"{result.truncated} rows reached the model's token limit and were truncated to it", highlight=False
        )
    if result.errors_file is not None:
        err.print(f"[yellow]{result.errors} rows failed[/]: reasons in {result.errors_file}", highlight=False)


class _Bar:
    """A rich progress bar: rows, rows/s and an ETA from the reader's position (bytes or rows of the input)."""

    def __enter__(self) -> _Bar:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]} rows"),
            TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=err, transient=False,
        )  # fmt: skip
        self.task: TaskID | None = None
        self.started_rows = 0
        return self

    def start(self, total: float, unit: str, rows_before: int) -> None:
        import time

        self.begin = time.perf_counter()
        self.started_rows = rows_before
        self.progress.start()
        self.task = self.progress.add_task(f"batch ({unit})", total=total or None, rows=0, rate="-")

    def update(self, rows: int, position: float) -> None:
        import time

        if self.task is None:
            self.start(0.0, "rows", 0)
        assert self.task is not None  # start() added it
        elapsed = time.perf_counter() - self.begin
        rate = f"{(rows - self.started_rows) / elapsed:.1f}" if elapsed > 0 and rows > self.started_rows else "-"
        self.progress.update(self.task, completed=position, rows=rows, rate=rate)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()

    def __exit__(self, *exc: object) -> None:
        self.stop()
