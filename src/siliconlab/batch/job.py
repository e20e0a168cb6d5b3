"""What both engines share: the job's options, the checks made before any work, and the final assembly."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siliconlab.batch.bucketing import DEFAULT_CHUNK_ROWS, DEFAULT_TOKENS_PER_BATCH
from siliconlab.batch.io import format_of, fsync_replace
from siliconlab.batch.journal import errors_path, parts_dir
from siliconlab.errors import UsageError

#: Called after each chunk: (rows done so far, reader position in the format's progress unit).
OnProgress = Callable[[int, float], None]
#: Called once before the first chunk: (progress total, its unit 'bytes' or 'rows', rows already done earlier).
OnStart = Callable[[float, str, int], None]


@dataclass
class JobOptions:
    model: str
    input: Path
    out: Path
    text_field: str = "text"
    unit: str = "best"
    tokens_per_batch: int = DEFAULT_TOKENS_PER_BATCH
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    overwrite: bool = False
    threads: int | None = None

    def command(self) -> dict[str, Any]:
        """The options that decide the output (the fingerprint's part); threads and --overwrite do not."""
        keep = asdict(self)
        for name in ("overwrite", "threads"):
            keep.pop(name)
        return {k: str(v) if isinstance(v, Path) else v for k, v in keep.items()}


@dataclass
class JobResult:
    out: Path
    unit: str
    rows: int = 0
    written: int = 0
    errors: int = 0
    resumed_rows: int = 0
    truncated: int = 0
    seconds: float = 0.0
    errors_file: Path | None = None
    shapes: list[tuple[int, int]] = field(default_factory=list)
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        done = self.rows - self.resumed_rows
        return done / self.seconds if self.seconds > 0 else 0.0


def check_paths(options: JobOptions) -> None:
    """Refuse bad paths before loading anything: missing input, unknown formats, a format change, an existing out."""
    if options.chunk_rows < 1:
        raise UsageError(f"chunk rows must be >= 1, got {options.chunk_rows}")
    if options.tokens_per_batch < 2:
        raise UsageError(f"--tokens-per-batch must be >= 2, got {options.tokens_per_batch}")
    if not options.input.exists():
        raise UsageError(f"no such input file: {options.input}")
    if not options.input.is_file():
        raise UsageError(f"--input {options.input} is not a file")
    source = format_of(options.input, "--input")
    target = "npy" if options.out.suffix.lower() == ".npy" else format_of(options.out, "--out")
    if target != "npy" and source != target:
        raise UsageError(
            f"--out must be {source} like the input (got {options.out.name}); batch keeps each row as it was read, "
            "which only round-trips within one format"
        )
    if options.out.resolve() == options.input.resolve():
        raise UsageError("--out is the input file: choose another path")
    if options.out.is_dir():
        raise UsageError(f"--out {options.out} is a folder, not a file")
    if options.overwrite:
        done_path(options.out).unlink(missing_ok=True)
        options.out.unlink(missing_ok=True)
        errors_path(options.out).unlink(missing_ok=True)
        shutil.rmtree(parts_dir(options.out), ignore_errors=True)
    options.out.parent.mkdir(parents=True, exist_ok=True)


def refuse_existing(out: Path) -> None:
    if out.exists():
        raise UsageError(f"{out} exists: pass --overwrite to replace it")


def done_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.done.json")


def record_done(out: Path, stamp: str, unit: str) -> None:
    """Remember that `out` is this job's finished output, so rerunning the same command says so (exit 0)."""
    from siliconlab.convert.manifest import write_json_atomic

    stat = out.stat()
    write_json_atomic(done_path(out), {"fingerprint": stamp, "unit": unit, "size": stat.st_size,
                                       "mtime_ns": stat.st_mtime_ns})  # fmt: skip


def finished_unit(out: Path, stamp: str) -> str | None:
    """The unit of a finished run of this very job (same command and input) whose output is untouched, else None."""
    try:
        record = json.loads(done_path(out).read_text())
        stat = out.stat()
    except (OSError, ValueError):
        return None
    same = record.get("fingerprint") == stamp and (record.get("size"), record.get("mtime_ns")) == (
        stat.st_size,
        stat.st_mtime_ns,
    )
    return str(record.get("unit")) if same else None


def write_errors(parts: list[Path], out: Path) -> Path | None:
    """Join the error parts into `<out>.errors.jsonl` (only when some row failed)."""
    target = errors_path(out)
    if not any(p.stat().st_size for p in parts):
        target.unlink(missing_ok=True)
        return None
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as sink:
        for part in parts:
            sink.write(part.read_bytes())
    fsync_replace(tmp, target)
    return target


def error_lines(start: int, errors: dict[int, str]) -> str:
    return "".join(json.dumps({"row": start + i, "reason": errors[i]}) + "\n" for i in sorted(errors))


def finish(handler: Any, data_parts: list[Path], error_parts: list[Path], out: Path) -> Path | None:
    """Errors file first, then the output (the job's commit point): both assembled beside, then renamed."""
    errors_file = write_errors(error_parts, out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        handler.assemble(data_parts, tmp)
        fsync_replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return errors_file


class Clock:
    def __init__(self) -> None:
        self.begin = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.begin
