"""Recordings: CSV and Parquet round trips of real polls, a reading that appears late, bad files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from siliconlab.monitor.load import load_sources
from siliconlab.monitor.recording import Recorder, check_path, read_recording
from siliconlab.monitor.sampler import Sample, Sampler


def _real_samples() -> list[Sample]:
    with Sampler(load_sources(), interval=0.1) as sampler:
        import time

        time.sleep(0.35)
    return list(sampler.samples)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str):
    samples = _real_samples()
    late = Sample(samples[-1].t + 0.1, {**samples[-1].values, "gpu0.util_pct": 42.0}, 0.002, 0.001)
    recorder = Recorder(tmp_path / f"run{suffix}")
    for sample in [*samples, late]:
        recorder.add(sample)
    path = recorder.close()
    data = read_recording(path)
    assert len(data["t_s"]) == len(samples) + 1 and data["t_s"][0] == 0.0
    assert data["t_s"] == sorted(data["t_s"])
    for index, sample in enumerate(samples):
        for key, value in sample.values.items():
            assert data[key][index] == pytest.approx(value, rel=1e-9, abs=1e-9)
    # the reading that first appeared in the last poll: a column of empty cells before it
    assert all(math.isnan(v) for v in data["gpu0.util_pct"][:-1]) and data["gpu0.util_pct"][-1] == 42.0
    assert data["sampler_ms"][-1] == pytest.approx(2.0)


def test_csv_is_readable_while_it_is_written(tmp_path: Path):
    recorder = Recorder(tmp_path / "live.csv")
    for sample in _real_samples():
        recorder.add(sample)
    assert len(read_recording(tmp_path / "live.csv")["t_s"]) == len(recorder.rows)  # before close()
    recorder.close()


def test_bad_paths_and_files(tmp_path: Path):
    with pytest.raises(ValueError, match="takes a .csv or .parquet"):
        check_path(tmp_path / "run.txt")
    with pytest.raises(ValueError, match="no such recording"):
        read_recording(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no t_s column"):
        read_recording(tmp_path / "other.csv")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet"):
        read_recording(tmp_path / "broken.parquet")
