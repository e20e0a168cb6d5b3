"""What both engines share: the job's options, the checks made before any work, and the final assembly."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.batch.io import Chunk, Format, format_of, fsync_replace
from siliconlab.batch.journal import Journal, errors_path, fingerprint, input_digest, parts_dir
from siliconlab.errors import UsageError
from siliconlab.paths import claim, shared_mode
from siliconlab.tasks.bucketing import DEFAULT_CHUNK_ROWS, DEFAULT_TOKENS_PER_BATCH

if TYPE_CHECKING:
    from siliconlab.batch.npy import NpyOutput

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
    #: Rows answered per node in this run (Ray engine; node label -> rows): what ran where.
    nodes: dict[str, int] = field(default_factory=dict)
    #: Seconds of `seconds` spent starting Ray and loading the actors' units (Ray engine): its fixed cost.
    startup_s: float = 0.0
    #: Chunks sent again because the actor holding them died, per node of that actor (Ray engine).
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        done = self.rows - self.resumed_rows
        return done / self.seconds if self.seconds > 0 else 0.0


def check_paths(options: JobOptions) -> None:
    """Refuse bad paths before loading anything: missing input, unknown formats, a format change, an output
    (or its errors file, parts or lock) that is the input. Nothing is written or removed here: `start_over`
    does that, under the job's lock."""
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
    source_file = options.input.resolve()
    if options.out.resolve() == source_file:
        raise UsageError("--out is the input file: choose another path")
    written = {errors_path(options.out): "errors file", lock_path(options.out): "lock file"}
    for path, what in written.items():
        if path.resolve() == source_file:
            raise UsageError(f"--input is the {what} of --out ({path.name}): choose another --out")
    folder = parts_dir(options.out)
    if source_file.is_relative_to(folder.resolve()):
        raise UsageError(f"--input is inside {folder}, which the job writes and removes: move it first")
    if options.out.is_dir():
        raise UsageError(f"--out {options.out} is a folder, not a file")
    nearest = next((folder for folder in options.out.parents if folder.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise UsageError(f"--out {options.out}: {nearest} is a file, not a folder")
    if parts_dir(options.out).is_symlink():
        raise UsageError(
            f"{parts_dir(options.out)} is a symbolic link: the job keeps its parts in that folder and removes it "
            "when done, so it must be a folder of its own; remove the link"
        )


def start_over(options: JobOptions) -> None:
    """With --overwrite, remove the earlier output, errors file and parts (call while holding the lock)."""
    if options.overwrite:
        done_path(options.out).unlink(missing_ok=True)
        options.out.unlink(missing_ok=True)
        errors_path(options.out).unlink(missing_ok=True)
        shutil.rmtree(parts_dir(options.out), ignore_errors=True)


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


@contextmanager
def exclusive_output(out: Path) -> Iterator[None]:
    """Hold `fcntl.flock` on `.<out>.lock` beside the output for the whole job; another job on it is refused.

    Why: two jobs on one --out wrote the same part names and the one that finished first assembled the
    other's parts (a wrong output reported as success). Refused rather than queued: the second job would
    find the first one's output and be refused anyway. The lock file is removed on release; a job that
    locked a file someone removed in between (its inode is no longer the path's) tries again. Without
    fcntl (Windows) jobs run unlocked; on NFS the lock is as good as the server's flock.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = lock_path(out)
    while True:
        # O_NOFOLLOW: a link planted at the lock's name must not be followed. Nothing is written into the file.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), shared_mode())
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise UsageError(
                f"another batch job is writing {out} (it holds {path.name}): wait for it to finish or choose "
                "another --out"
            ) from None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(descriptor)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)


def file_identity(path: Path) -> tuple[int, int, int, int]:
    """(inode, size, mtime_ns, ctime_ns): taken before the input is hashed and compared before the output is
    assembled, so an input edited while the job read it is noticed. ctime cannot be set back by `cp -p`/`touch`."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


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
    tmp = claim(target.with_name(f".{target.name}.tmp"))
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
    tmp = claim(out.with_name(f".{out.name}.tmp-{os.getpid()}"))
    try:
        handler.assemble(data_parts, tmp)
        fsync_replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return errors_file


@dataclass
class Resume:
    """What a job checks its journal against: the command, the input's identity and content fingerprint."""

    command: dict[str, Any]
    identity: tuple[int, int, int, int]
    stamp: str
    journal: Journal | None


def open_resume(options: JobOptions) -> Resume | JobResult:
    """The journal of an unfinished run of this very job (or None in `journal`), or the result of a job whose
    output was already written; an existing output without such a journal is refused. Both engines call it
    under the output's lock, so they resume each other's parts under one rule."""
    command = options.command()
    identity = file_identity(options.input)
    stamp = fingerprint(command, input_digest(options.input))
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
    return Resume(command, identity, stamp, journal)


def usable_rows(chunk: Chunk) -> tuple[list[int], list[Any]]:
    """The chunk's rows the reader could parse, and their texts (what goes to the model)."""
    usable = [i for i in range(chunk.count) if i not in chunk.problems]
    return usable, [chunk.texts[i] for i in usable]


def commit_chunk(
    handler: Format | NpyOutput,
    journal: Journal,
    chunk: Chunk,
    usable: list[int],
    outcome: Any,
    node: str | None = None,
) -> tuple[int, int]:
    """Commit one answered chunk: part files (temp, fsync, rename), then the journal line; (kept, errors).
    `outcome` is the `task.Outcome` of the usable rows, computed here or on a Ray actor."""
    good = [usable[g] for g in outcome.good]
    errors = dict(chunk.problems)
    errors.update({usable[i]: reason for i, reason in outcome.errors.items()})
    data, failed = journal.part(chunk.index, handler.name), journal.part(chunk.index, "errors.jsonl")
    data_tmp, failed_tmp = claim(data.with_name(data.name + ".tmp")), claim(failed.with_name(failed.name + ".tmp"))
    handler.write_part(data_tmp, chunk, good, outcome.columns)
    failed_tmp.write_text(error_lines(chunk.start, errors), encoding="utf-8")
    fsync_replace(data_tmp, data)
    fsync_replace(failed_tmp, failed)
    journal.commit(chunk.index, chunk.count, len(good), len(errors), node)
    return len(good), len(errors)


def complete(
    options: JobOptions, handler: Format | NpyOutput, journal: Journal, identity: tuple[int, int, int, int]
) -> Path | None:
    """Every chunk is committed: check the input did not change under the job, then assemble (the commit
    point), then remove the parts; returns the errors file."""
    if file_identity(options.input) != identity:
        raise UsageError(
            f"--input {options.input} changed while the job ran: the committed parts are kept, but they may mix "
            "old and new rows; rerun with --overwrite"
        )
    indices = sorted(journal.done)
    journal.state["assembled"] = True
    journal.save()
    errors_file = finish(
        handler,
        [journal.part(i, handler.name) for i in indices],
        [journal.part(i, "errors.jsonl") for i in indices],
        options.out,
    )
    journal.remove()
    record_done(options.out, str(journal.state["fingerprint"]), journal.unit)
    return errors_file


class Clock:
    def __init__(self) -> None:
        self.begin = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.begin
