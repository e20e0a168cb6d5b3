"""Streamed readers and writers for JSONL, CSV and Parquet: a file is read in fixed row ranges (chunks), never whole.

Each chunk carries the rows as the output will write them back (JSONL: dicts; CSV: lists of cells; Parquet:
an Arrow table) and the text field's values, with a reason for each row that has no usable text. Chunk
outputs go to part files; `assemble` joins the parts in order into the final file. CSV cells are kept as
strings exactly as read (undecodable bytes survive the round trip through surrogateescape).
"""

from __future__ import annotations

import csv
import io
import json
import math
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.batch.format import FORMATS, Chunk, Format, format_of, fsync_replace
from siliconlab.batch.parquet import ParquetFormat
from siliconlab.errors import SiliconlabError, UsageError

if TYPE_CHECKING:
    from siliconlab.tasks.task import Task

__all__ = ["FORMATS", "Chunk", "CsvFormat", "Format", "JsonlFormat", "format_of", "fsync_replace", "open_format"]

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long reviews are fine; the tokenizer truncates
BOM = b"\xef\xbb\xbf"


class Unwritable(ValueError):
    """A JSON value that reads but cannot be written back as JSON (1e400 reads as inf, written `Infinity`)."""


class Number:
    """A JSON number whose text a float would change (`1e-400` reads as 0.0, `1E5` as 100000.0, 20 digits as 17):
    kept as written, so the row's other fields go out as they came in."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal

    def __float__(self) -> float:
        return float(self.literal)


def _finite_float(literal: str) -> float | Number:
    value = float(literal)
    if not math.isfinite(value):
        raise Unwritable(f"the number {literal[:40]} is beyond float range (it would be written back as {value})")
    return value if repr(value) == literal else Number(literal)


#: Where a `Number` goes in the JSON text before its literal replaces it: random per process, so no input holds it.
_SLOT = f"siliconlab-number-{secrets.token_hex(16)}-"


def dumps_row(row: dict[str, Any]) -> str:
    """One row as ASCII JSON, every `Number` as its literal; never NaN or Infinity (ValueError)."""
    literals: list[str] = []

    def slot(value: Any) -> str:
        if not isinstance(value, Number):
            raise TypeError(f"{type(value).__name__} is not JSON")
        literals.append(value.literal)
        return f"{_SLOT}{len(literals) - 1}"

    line = json.dumps(row, allow_nan=False, default=slot)
    for index, literal in enumerate(literals):
        line = line.replace(f'"{_SLOT}{index}"', literal, 1)
    return line


def _no_constant(literal: str) -> float:
    raise Unwritable(f"{literal} is not a JSON number (Python's json accepts it; other readers do not)")


class JsonlFormat(Format):
    """One JSON object per non-blank line; a row is a non-blank line (blank lines are not rows)."""

    name = "jsonl"

    def chunks(self, chunk_rows: int, done: set[int]) -> Iterator[Chunk]:
        chunk = Chunk(0, 0, 0, rows=[])
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1:  # a UTF-8 byte order mark (Windows editors write one) is not part of the row
                    raw = raw.removeprefix(BOM)
                if not raw.strip():
                    continue
                if chunk.index not in done:
                    self._parse(chunk, raw, number)
                chunk.count += 1
                if chunk.count == chunk_rows:
                    chunk.position = handle.tell()
                    yield self._finish(chunk, done)
                    chunk = Chunk(chunk.index + 1, chunk.start + chunk.count, 0, rows=[])
            chunk.position = self.total
        if chunk.count:
            yield self._finish(chunk, done)

    @staticmethod
    def _finish(chunk: Chunk, done: set[int]) -> Chunk:
        if chunk.index in done:
            chunk.rows, chunk.texts = None, []
        return chunk

    def _parse(self, chunk: Chunk, raw: bytes, number: int) -> None:
        local = chunk.count
        row: Any = None
        try:
            if b"\x00" in raw:  # JSON never holds a raw NUL; UTF-16 text is full of them
                raise Unwritable(f"line {number} holds NUL bytes: batch reads UTF-8 (is the file UTF-16, or binary?)")
            row = json.loads(raw.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)
        except UnicodeDecodeError as exc:
            chunk.problems[local] = (
                f"line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            )
        except Unwritable as exc:
            chunk.problems[local] = str(exc) if str(exc).startswith("line ") else f"line {number}: {exc}"
        except ValueError as exc:
            chunk.problems[local] = f"line {number} is not valid JSON ({_first_line(exc)})"
        except RecursionError:
            chunk.problems[local] = f"line {number} is nested too deeply to read"
        if local not in chunk.problems and not isinstance(row, dict):
            chunk.problems[local] = f"line {number} is not a JSON object"
        elif local not in chunk.problems and self.text_field not in row:
            chunk.problems[local] = f"line {number} has no field '{self.text_field}'"
        elif local not in chunk.problems and any(c in row for c in self.result_columns):
            chunk.problems[local] = (
                f"line {number} already has a field named like a result ({', '.join(self.result_columns)})"
            )
        chunk.rows.append(row if local not in chunk.problems else None)
        text = row.get(self.text_field) if local not in chunk.problems else None
        chunk.texts.append(float(text) if isinstance(text, Number) else text)  # a number is not a text: refused

    def write_part(self, path: Path, chunk: Chunk, good: list[int], columns: dict[str, list[Any]]) -> None:
        with open(path, "w", encoding="utf-8") as target:
            for position, local in enumerate(good):
                row = dict(chunk.rows[local])
                for name, values in columns.items():
                    value = values[position]
                    row[name] = value.tolist() if hasattr(value, "tolist") else value
                try:  # ASCII: no raw U+2028 for readers that split lines on it; never NaN/Infinity (not JSON)
                    line = dumps_row(row)
                except ValueError as exc:  # the Ray engine's Arrow reader can turn 1e400 into inf
                    raise SiliconlabError(
                        f"row {chunk.start + local} holds a number JSON cannot write ({exc}): fix it in the input"
                    ) from None
                target.write(line + "\n")


class CsvFormat(Format):
    """A header line, then one record per row (quoted newlines allowed); cells stay strings."""

    name = "csv"

    def check(self) -> None:
        with self._text(open(self.path, "rb")) as handle:
            try:
                self.header = next(csv.reader(handle), [])
            except csv.Error as exc:
                raise UsageError(f"{self.path.name}: the header could not be read as CSV ({exc})") from None
        if self.header and self.text_field not in self.header:
            raise UsageError(f"{self.path.name} has no column '{self.text_field}' (columns: {', '.join(self.header)})")
        self._collision(self.header)
        self.column = self.header.index(self.text_field) if self.header else 0

    @staticmethod
    def _text(handle: Any) -> io.TextIOWrapper:
        """The bytes as the csv module wants them: newline="" (\\n, \\r\\n and a lone \\r all end a record: a
        CR-only file from old Mac tools raised `_csv.Error`), a leading BOM dropped, undecodable bytes kept."""
        return io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def chunks(self, chunk_rows: int, done: set[int]) -> Iterator[Chunk]:
        chunk = Chunk(0, 0, 0, rows=[])
        with open(self.path, "rb") as handle, self._text(handle) as text:
            records = csv.reader(text)
            for number, cells in enumerate(_records(records, self.path.name)):
                if number == 0 or not cells:  # the header; blank lines are not rows
                    continue
                if chunk.index not in done:
                    self._add(chunk, cells)
                chunk.count += 1
                if chunk.count == chunk_rows:
                    chunk.position = handle.tell()  # bytes read ahead by the text layer: near enough for progress
                    yield JsonlFormat._finish(chunk, done)
                    chunk = Chunk(chunk.index + 1, chunk.start + chunk.count, 0, rows=[])
        chunk.position = self.total
        if chunk.count:
            yield JsonlFormat._finish(chunk, done)

    def _add(self, chunk: Chunk, cells: list[str]) -> None:
        if len(cells) != len(self.header):
            chunk.problems[chunk.count] = f"record has {len(cells)} cells, the header has {len(self.header)}"
        chunk.rows.append(cells)
        chunk.texts.append(cells[self.column] if chunk.count not in chunk.problems else None)

    def write_part(self, path: Path, chunk: Chunk, good: list[int], columns: dict[str, list[Any]]) -> None:
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as target:
            writer = csv.writer(target)
            for position, local in enumerate(good):
                extra = [_cell(values[position]) for values in columns.values()]
                writer.writerow([*chunk.rows[local], *extra])

    def _header(self, target: Any) -> None:
        if self.header:
            with open(
                target.fileno(), "w", encoding="utf-8", errors="surrogateescape", newline="", closefd=False
            ) as text:
                csv.writer(text).writerow([*self.header, *self.result_columns])


def _records(reader: Any, name: str) -> Iterator[list[str]]:
    """The reader's records; a record the csv module cannot parse stops the job with one line (the chunks
    committed before it are kept for a rerun)."""
    try:
        yield from reader
    except csv.Error as exc:
        raise UsageError(f"{name} line {reader.line_num} could not be read as CSV ({exc})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _cell(value: Any) -> str:
    """A result as one CSV cell: embeddings and score maps as JSON, numbers as their shortest repr."""
    if hasattr(value, "tolist"):
        return json.dumps(value.tolist())
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def open_format(path: Path, text_field: str, task: Task, labels: list[str] | None = None) -> Format:
    """The reader/writer for `path`, checked against the text field (and the task's result column names)."""
    kinds: dict[str, type[JsonlFormat | CsvFormat | ParquetFormat]] = {"jsonl": JsonlFormat, "csv": CsvFormat,
                                                                       "parquet": ParquetFormat}  # fmt: skip
    handler = kinds[format_of(path, "--input")](path, text_field, task, labels)
    handler.check()
    return handler
