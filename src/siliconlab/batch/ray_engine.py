"""The Ray engine: the same job on Ray Data, on a local Ray (default) or any cluster (`--address`).

`read_json` / `read_csv` / `read_parquet` -> `map_batches` with an actor class that loads the unit once per
actor (`ActorPoolStrategy(size=N)`) -> the driver streams the answered blocks, in input order, through the
same writers as the local engine, so the output file is the same (rows, order, columns; results equal up to
float tolerance: int8 units quantise per batch, and Ray's batches need not match the local chunks).
Not resumable: an interrupted run leaves no output, and a rerun starts over (see docs/batch.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from siliconlab.batch.io import Chunk, Format, open_format
from siliconlab.batch.job import (
    Clock,
    JobOptions,
    JobResult,
    OnProgress,
    OnStart,
    check_paths,
    error_lines,
    finish,
    refuse_existing,
)
from siliconlab.errors import SiliconlabError, UsageError

ERROR = "__siliconlab_error"
UNIT = "__siliconlab_unit"  # the unit each actor resolved ("best" is decided per actor), reported by the driver


class _Everything:
    """A `done` set holding every chunk: the readers then count rows without parsing them."""

    def __contains__(self, item: object) -> bool:
        return True


class AnswerActor:
    """One Ray actor: loads the unit once, then answers Arrow batches (results + an error column)."""

    def __init__(self, model: str, unit: str, budget: int, text_field: str, threads: int | None = None):
        from siliconlab.batch.task import TaskRunner

        self.runner = TaskRunner(model, unit, budget, threads)
        self.text_field = text_field

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from siliconlab.batch.parquet import _arrow_column

        texts = batch.column(self.text_field).to_pylist()
        usable = [i for i, text in enumerate(texts) if text is not None]
        outcome = self.runner.run([texts[i] for i in usable], self.text_field)
        errors: list[str | None] = [f"field '{self.text_field}' is null" if t is None else None for t in texts]
        for local, reason in outcome.errors.items():
            errors[usable[local]] = reason
        good = [usable[g] for g in outcome.good]
        where = {row: position for position, row in enumerate(good)}
        for name, values in outcome.columns.items():
            full = [values[where[i]] if i in where else None for i in range(len(texts))]
            present = [v for v in full if v is not None]
            column = _arrow_column(name, present, self.runner.labels)
            batch = batch.append_column(name, _spread(column, [i in where for i in range(len(texts))]))
        batch = batch.append_column(ERROR, pa.array(errors, type=pa.string()))
        return batch.append_column(
            UNIT, pa.array([self.runner.unit] * len(texts), type=pa.string()).dictionary_encode()
        )


def _spread(column: Any, present: list[bool]) -> Any:
    """`column` (values of the present rows) laid out over all rows, null where a row failed."""
    import pyarrow as pa

    positions, taken = [], 0
    for flag in present:
        positions.append(taken if flag else None)
        taken += flag
    return column.take(pa.array(positions, type=pa.int64()))


def describe(model: str) -> tuple[str, list[str]]:
    """(task, labels) on the driver without loading weights: the actors load the model, the driver only writes."""
    from siliconlab.models import resolve
    from siliconlab.models.base import head_spec
    from siliconlab.tasks.loader import TASK_MODELS, labels_of

    task = TASK_MODELS.get(model)
    source = resolve(model)
    if task is None:
        names = getattr(source.config, "architectures", None) or []
        classifier = head_spec(source.config) is not None or any(n.endswith("ForSequenceClassification") for n in names)
        task = "classification" if classifier else "embedding"
    if task not in ("embedding", "classification"):
        raise UsageError(f"model '{model}' is a {task} model; batch runs embedding or classification models")
    return task, labels_of(source.config) if task == "classification" else []


def run_job(
    options: JobOptions,
    address: str | None = None,
    actors: int = 1,
    on_progress: OnProgress | None = None,
    on_start: OnStart | None = None,
) -> JobResult:
    """The job on Ray Data; the output file is written by this (driver) process, atomically at the end."""
    if options.out.suffix.lower() == ".npy":  # before check_paths, which --overwrite lets delete the output
        raise UsageError("--out .npy is written by the local engine; --engine ray writes the input's format")
    check_paths(options)
    refuse_existing(options.out)
    task, labels = describe(options.model)
    handler = open_format(options.input, options.text_field, task, labels)
    total = sum(chunk.count for chunk in handler.chunks(1 << 20, _Everything()))
    if on_start is not None:
        on_start(float(total), "rows", 0)
    folder = options.out.with_name(options.out.name + ".ray-parts")
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted Ray run is not resumed: start over
    folder.mkdir(parents=True)
    result = JobResult(options.out, options.unit)
    clock = Clock()
    try:
        data, failed = (
            ([], []) if total == 0 else _run_on_ray(options, handler, folder, address, actors, result, on_progress)
        )
        result.errors_file = finish(handler, data, failed, options.out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result.seconds = clock.seconds()
    return result


def _run_on_ray(
    options: JobOptions,
    handler: Format,
    folder: Path,
    address: str | None,
    actors: int,
    result: JobResult,
    on_progress: OnProgress | None,
) -> tuple[list[Path], list[Path]]:
    import ray

    started = not ray.is_initialized()
    if started:
        _start_ray(address)
    try:
        dataset = _dataset(options, handler, actors)
        data, failed = [], []
        for index, batch in enumerate(dataset.iter_batches(batch_format="pyarrow", batch_size=None)):
            part, errors = folder / f"part-{index:07d}.{handler.name}", folder / f"part-{index:07d}.errors.jsonl"
            _write_batch(handler, batch, part, errors, result)
            data.append(part)
            failed.append(errors)
            if on_progress is not None:
                on_progress(result.rows, float(result.rows))
        return data, failed
    except SiliconlabError:
        raise
    except Exception as exc:  # Ray wraps reader/actor failures; say the cause in one line
        raise SiliconlabError(f"the Ray job failed: {_cause(exc)}") from None
    finally:
        if started:
            ray.shutdown()


def _cause(exc: BaseException) -> str:
    """The innermost error under Ray's wrappers (RayTaskError.cause / __cause__), as one line."""
    for _ in range(8):
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def _start_ray(address: str | None) -> None:
    """A local Ray (2 CPUs, no dashboard) or the cluster at `address`; one retry, since a raylet on a busy
    machine can miss Ray's fixed 30 s start-up wait."""
    import ray

    kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": 2, "include_dashboard": False}
    for attempt in (1, 2):
        try:
            ray.init(log_to_driver=False, logging_level="WARNING", configure_logging=False, **kwargs)
            return
        except Exception as exc:  # Ray raises bare Exception / ConnectionError when it cannot start or connect
            ray.shutdown()
            if attempt == 2:
                where = f"at {address}" if address else "locally"
                raise SiliconlabError(f"Ray could not start {where}: {str(exc).splitlines()[0][:300]}") from None


def _dataset(options: JobOptions, handler: Format, actors: int) -> Any:
    """read_* -> map_batches on an actor pool, in input order."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    path = str(options.input.resolve())
    if handler.name == "jsonl":
        dataset = ray.data.read_json(path, lines=True, file_extensions=None)
    elif handler.name == "csv":
        types = {name: pa.string() for name in handler.header} | {options.text_field: pa.binary()}
        convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)
        dataset = ray.data.read_csv(path, convert_options=convert, file_extensions=None)
    else:
        dataset = ray.data.read_parquet(path, file_extensions=None)
    return dataset.map_batches(
        AnswerActor,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=options.chunk_rows,
        batch_format="pyarrow",
        num_cpus=1,
        fn_constructor_kwargs={
            "model": options.model,
            "unit": options.unit,
            "budget": options.tokens_per_batch,
            "text_field": options.text_field,
            "threads": options.threads,
        },
    )


def _write_batch(handler: Format, batch: Any, part: Path, errors_part: Path, result: JobResult) -> None:
    """One answered block -> a part file through the format's own writer, and its failed rows."""
    import numpy as np

    reasons = batch.column(ERROR).to_pylist()
    good = [i for i, reason in enumerate(reasons) if reason is None]
    errors = {i: reason for i, reason in enumerate(reasons) if reason is not None}
    columns: dict[str, list[Any]] = {}
    for name in handler.result_columns:
        column = batch.column(name).take(good).combine_chunks()
        if name == "embedding":
            flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            columns[name] = list(flat.reshape(len(good), -1)) if good else []
        else:
            columns[name] = column.to_pylist()
    units = sorted(set(batch.column(UNIT).to_pylist()) | set(result.unit.split(", ")) - {"best"})
    result.unit = ", ".join(units)
    base = batch.drop_columns([*handler.result_columns, ERROR, UNIT])
    if handler.name == "jsonl":
        rows: Any = base.to_pylist()
    elif handler.name == "csv":
        rows = [[_text(cell) for cell in record.values()] for record in base.to_pylist()]
    else:
        rows = base
    handler.write_part(part, Chunk(0, result.rows, batch.num_rows, rows=rows), good, columns)
    errors_part.write_text(error_lines(result.rows, errors), encoding="utf-8")
    result.rows += batch.num_rows
    result.written += len(good)
    result.errors += len(errors)


def _text(cell: Any) -> str:
    return cell.decode("utf-8", "surrogateescape") if isinstance(cell, bytes) else cell
