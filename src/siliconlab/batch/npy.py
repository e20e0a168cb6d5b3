"""`--out X.npy` for an embedding job: one float32 matrix, row i for input row i, as `siliconlab embed --out X.npy`
writes. A row that could not be answered is NaN (its reason in `X.npy.errors.jsonl`), so rows stay aligned with
the input; the input's own columns are not kept (use JSONL/CSV/Parquet output for that)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.batch.format import Chunk, Format
from siliconlab.errors import UsageError


class NpyOutput:
    """Reads through the input's format; writes each chunk as an .npy part, then one matrix from the parts."""

    name = "npy"

    def __init__(self, reader: Format):
        self.reader = reader
        vectors = [column.name for column in reader.columns if column.kind == "vector"]
        if len(vectors) != 1:
            raise UsageError(f"--out .npy holds embeddings; '{reader.task.name}' models answer "
                             f"{', '.join(reader.result_columns)}")  # fmt: skip
        self.column = vectors[0]
        self.total = reader.total
        self.progress_unit = reader.progress_unit

    def chunks(self, chunk_rows: int, done: set[int]) -> Iterator[Chunk]:
        return self.reader.chunks(chunk_rows, done)

    def write_part(self, path: Path, chunk: Chunk, good: list[int], columns: dict[str, list[Any]]) -> None:
        vectors = columns.get(self.column, [])
        block = np.full((chunk.count, len(vectors[0]) if vectors else 0), np.nan, dtype=np.float32)
        for row, vector in zip(good, vectors):
            block[row] = vector
        with open(path, "wb") as handle:
            np.save(handle, block, allow_pickle=False)

    def assemble(self, parts: list[Path], out: Path) -> None:
        """Parts are read memory-mapped and copied into a memory-mapped result: no whole matrix in RAM."""
        blocks = [np.load(part, mmap_mode="r") for part in parts]
        width = max((block.shape[1] for block in blocks), default=0)
        rows = sum(block.shape[0] for block in blocks)
        matrix = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(rows, width))
        start = 0
        for block in blocks:
            # A chunk with no answered row has no width of its own: NaN rows at the job's width.
            matrix[start : start + len(block)] = block if block.shape[1] == width else np.nan
            start += len(block)
        matrix.flush()
        del matrix
