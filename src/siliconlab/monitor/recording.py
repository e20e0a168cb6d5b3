"""Recordings: every Sampler poll as one row of a CSV or Parquet file, and reading them back.

Columns: `t_s` (seconds since the recording began), `unix_s` (wall-clock time), `sampler_ms` (what the poll
itself cost, wall time), then one column per reading, `source.reading` as the Sampler names it (unit in the
suffix: `_pct`, `_mhz`, `_mb`, `_w`, `_j`, `_c`). A reading missing from a poll is an empty cell (NaN).

CSV is written as it goes, so a killed run keeps what it saw; a reading that first appears late (delta
sources need two polls; a GPU reading may start later) adds a column, and the file is rewritten once with
the wider header. Parquet (pyarrow) is written whole when the recording closes, Ctrl-C included.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

from siliconlab.monitor.sampler import Sample

FORMATS = (".csv", ".parquet")
FIXED = ("t_s", "unix_s", "sampler_ms")


def check_path(path: Path) -> Path:
    """The recording's path if its suffix names a format we write; ValueError with one line otherwise."""
    if Path(path).suffix.lower() not in FORMATS:
        raise ValueError(f"--record takes a .csv or .parquet file, got '{path}'")
    if Path(path).suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401 - checked now, so a run is not lost at the end for want of it
        except ImportError:
            raise ValueError("--record FILE.parquet needs pyarrow (pip install 'siliconlab[monitor]'); "
                             "or record to .csv") from None  # fmt: skip
    return Path(path)


class Recorder:
    """`add(sample)` per poll (in order), `close()` at the end. Thread-unsafe: one caller adds."""

    def __init__(self, path: Path, started: float | None = None):
        self.path = check_path(path)
        self.parquet = self.path.suffix.lower() == ".parquet"
        self.started = started  # perf_counter time of t_s = 0; the first sample's when None
        self._offset = time.time() - time.perf_counter()  # perf_counter -> unix seconds
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = list(FIXED)
        self._handle: Any = None
        self._writer: Any = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, sample: Sample) -> None:
        if self.started is None:
            self.started = sample.t
        row = {"t_s": round(sample.t - self.started, 4), "unix_s": round(sample.t + self._offset, 3),
               "sampler_ms": round(sample.cost_s * 1e3, 3), **sample.values}  # fmt: skip
        self.rows.append(row)
        if self.parquet:
            return
        new = sorted(key for key in sample.values if key not in self.columns)
        if new or self._writer is None:
            self.columns += new
            self._rewrite()
        else:
            self._writer.writerow(row)
            self._handle.flush()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _rewrite(self) -> None:
        """(Re)write the whole CSV with the current columns; later rows are appended to it."""
        if self._handle is not None:
            self._handle.close()
        self._handle = self.path.open("w", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns, restval="")
        self._writer.writeheader()
        self._writer.writerows(self.rows)
        self._handle.flush()

    def close(self) -> Path:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = list(FIXED) + sorted({k for row in self.rows for k in row} - set(FIXED))
            table = pa.table({c: pa.array([row.get(c) for row in self.rows], type=pa.float64()) for c in columns})
            tmp = self.path.with_suffix(".tmp.parquet")
            pq.write_table(table, tmp)
            tmp.replace(self.path)
        elif self._handle is not None:
            self._close()
        elif not self.rows:  # nothing sampled: still leave a file with the header, so the run is visible
            self._rewrite()
            self._close()
        return self.path


def read_recording(path: Path) -> dict[str, list[float]]:
    """{column: values} from a CSV or Parquet recording; empty cells are NaN. ValueError for a bad file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValueError(f"no such recording: {path}")
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"reading {path} needs pyarrow (pip install 'siliconlab[monitor]')") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # ArrowInvalid: not a parquet file
            raise ValueError(f"{path} is not a readable Parquet file ({type(exc).__name__})") from None
        data = {name: [math.nan if v is None else float(v) for v in table.column(name).to_pylist()]
                for name in table.column_names}  # fmt: skip
    elif suffix == ".csv":
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            names = reader.fieldnames or []
            data = {name: [] for name in names}
            try:
                for row in reader:
                    for name in names:
                        cell = row.get(name)
                        data[name].append(float(cell) if cell not in ("", None) else math.nan)
            except ValueError:
                raise ValueError(f"{path} is not a monitor recording (a cell is not a number)") from None
    else:
        raise ValueError(f"{path}: a recording is a .csv or .parquet file")
    if "t_s" not in data:
        raise ValueError(f"{path} is not a monitor recording (no t_s column)")
    return data
