"""Parquet in and out with pyarrow, a row group's worth at a time: results become typed columns by the task's
column kinds (vector: list<float32>, e.g. embedding; str: string, e.g. label; float: float64, e.g. score; map:
a struct with one float64 per label, e.g. scores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.batch.format import Chunk, Format
from siliconlab.errors import UsageError
from siliconlab.tasks.task import Column


class ParquetFormat(Format):
    name = "parquet"
    progress_unit = "rows"

    def check(self) -> None:
        import pyarrow.parquet as pq

        try:
            self.file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a file that is not Parquet
            raise UsageError(f"{self.path.name} is not a readable Parquet file ({exc})") from None
        self.schema = self.file.schema_arrow
        if self.text_field not in self.schema.names:
            raise UsageError(
                f"{self.path.name} has no column '{self.text_field}' (columns: {', '.join(self.schema.names)})"
            )
        repeated = sorted({name for name in self.schema.names if self.schema.names.count(name) > 1})
        if repeated:  # Arrow refuses to pick a column by a repeated name (a KeyError deep inside, once a traceback)
            raise UsageError(f"{self.path.name} has more than one column named {', '.join(map(repr, repeated))}")
        self._collision(self.schema.names)
        self.total = float(self.file.metadata.num_rows)

    def chunks(self, chunk_rows: int, done: set[int]) -> Iterator[Chunk]:
        import pyarrow as pa

        pending: list[Any] = []
        held = 0
        index = start = 0
        for batch in self.file.iter_batches(batch_size=chunk_rows):
            pending.append(batch)
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending, schema=self.schema)
                yield self._chunk(index, start, table.slice(0, chunk_rows), done)
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
                index, start = index + 1, start + chunk_rows
        if held:
            yield self._chunk(index, start, pa.Table.from_batches(pending, schema=self.schema), done)

    def _chunk(self, index: int, start: int, table: Any, done: set[int]) -> Chunk:
        chunk = Chunk(index, start, table.num_rows, position=float(start + table.num_rows))
        if index in done:
            return chunk
        chunk.rows = table
        chunk.texts = table.column(self.text_field).to_pylist()
        for local, text in enumerate(chunk.texts):
            if text is None:
                chunk.problems[local] = f"field '{self.text_field}' is null"
        return chunk

    def result_schema(self) -> Any:
        schema = self.schema
        for column in self.columns:
            schema = schema.append(_arrow_field(column))
        return schema

    def write_part(self, path: Path, chunk: Chunk, good: list[int], columns: dict[str, list[Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = chunk.rows.take(pa.array(good, type=pa.int64()))
        kinds = {column.name: column for column in self.columns}
        for name, values in columns.items():
            table = table.append_column(name, _arrow_column(kinds[name], values))
        pq.write_table(table.cast(self.result_schema()), path)

    def assemble(self, parts: list[Path], out: Path) -> None:
        import pyarrow.parquet as pq

        with pq.ParquetWriter(out, self.result_schema()) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part))


def _arrow_field(column: Column) -> Any:
    import pyarrow as pa

    kinds = {"vector": pa.list_(pa.float32()), "str": pa.string(), "float": pa.float64(),
             "map": pa.struct([pa.field(key, pa.float64()) for key in column.keys])}  # fmt: skip
    return pa.field(column.name, kinds[column.kind])


def _arrow_column(column: Column, values: list[Any]) -> Any:
    import pyarrow as pa

    if column.kind == "vector":
        width = len(values[0]) if values else 0
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        offsets = np.arange(len(values) + 1, dtype=np.int32) * width
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()))
    if column.kind == "map":
        keys = list(column.keys)
        arrays = [pa.array([row[key] for row in values], type=pa.float64()) for key in keys]
        return pa.StructArray.from_arrays(arrays, names=keys) if keys else pa.array([{}] * len(values))
    return pa.array(values, type=_arrow_field(column).type)
