"""What every batch file format shares: a chunk (a fixed row range of the input) and the Format interface.

The formats themselves are in io.py (JSONL, CSV) and parquet.py; this module sits under both.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.errors import UsageError

if TYPE_CHECKING:
    from siliconlab.tasks.task import Task

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Chunk:
    """Rows [start, start + count) of the input; `rows` is None for a chunk the journal already holds."""

    index: int
    start: int
    count: int
    texts: list[Any] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)
    rows: Any = None
    position: float = 0.0


def format_of(path: Path, option: str) -> str:
    name = FORMATS.get(path.suffix.lower())
    if name is None:
        raise UsageError(f"{option} {path.name}: the format comes from the suffix: .jsonl, .csv or .parquet")
    return name


def fsync_replace(tmp: Path, path: Path) -> None:
    """Make a finished file durable, then give it its name in one step: readers see all of it or nothing."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Format(ABC):
    """One input file's format: its chunks, its part files, the final output."""

    name = "?"
    progress_unit = "bytes"

    def __init__(self, path: Path, text_field: str, task: Task, labels: list[str] | None = None):
        self.path = path
        self.text_field = text_field
        self.task = task
        self.labels = labels or []
        self.columns = task.columns(self.labels, 0)  # the task's answer columns (vector widths unknown here)
        self.total = float(path.stat().st_size)

    @property
    def result_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def check(self) -> None:
        """Refuse at once what would fail every row: a missing text column, a result column name taken.
        A hook: formats that can read their columns before the run override it; the rest check per row."""
        return None

    @abstractmethod
    def chunks(self, chunk_rows: int, done: set[int]) -> Iterator[Chunk]:
        """Fixed row ranges of `chunk_rows`, skipping the chunk indexes in `done`."""

    @abstractmethod
    def write_part(self, path: Path, chunk: Chunk, good: list[int], columns: dict[str, list[Any]]) -> None:
        """One chunk's answered rows with their result columns, in this format."""

    def assemble(self, parts: list[Path], out: Path) -> None:
        """Concatenate text parts in order (Parquet overrides)."""
        with open(out, "wb") as target:
            self._header(target)
            for part in parts:
                with open(part, "rb") as source:
                    while block := source.read(1 << 20):
                        target.write(block)

    def _header(self, target: Any) -> None:
        """Bytes before the first part (CSV's header line); none by default."""
        return None

    def _collision(self, names: list[str]) -> None:
        taken = [c for c in self.result_columns if c in names]
        if taken:
            raise UsageError(
                f"{self.path.name} already has a column named {', '.join(repr(t) for t in taken)}, "
                "which the results would overwrite: rename it first"
            )
