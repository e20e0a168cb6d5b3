"""The benchmark tab's reading of bench results: the newest result of this machine, its rows and charts."""

from __future__ import annotations

import json
from pathlib import Path

from siliconlab.bench.machine import machine_info
from siliconlab.demo import benchtab


def _write(folder: Path, name: str, created: str, machine: dict, unit: str) -> Path:
    row = {"unit": unit, "workload": "text", "workload_label": "text B1", "latency_ms": {"p50": 3.0, "p90": 4.0},
           "speedup": 2.0, "contention": {}}  # fmt: skip
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"schema": "siliconlab.bench/1", "created": created, "model": "minilm",
                                "machine": machine, "results": [row]}))  # fmt: skip
    return path


def test_latest_result_is_the_newest_of_this_machine(tmp_path: Path):
    here = machine_info()
    other = {**here, "cpu": "some other CPU"}
    _write(tmp_path, "bench-minilm-a", "2026-01-01T00:00:00+00:00", here, "older-unit")
    newest = _write(tmp_path, "bench-minilm-b", "2026-02-01T00:00:00+00:00", here, "newest-unit")
    _write(tmp_path, "bench-minilm-c", "2026-03-01T00:00:00+00:00", other, "other-machine-unit")
    (tmp_path / "bench-minilm-d.json").write_text("{not json")
    (newest.parent / f"{newest.stem}-latency.png").write_bytes(b"\x89PNG")
    result, path = benchtab.latest_result(tmp_path)
    assert path == newest
    assert benchtab.result_rows(result)[0][:5] == ["newest-unit", "text B1", 3.0, 4.0, 2.0]
    assert benchtab.charts(path) == [str(newest.parent / f"{newest.stem}-latency.png")]
    assert "minilm" in benchtab.describe((result, path), tmp_path)


def test_no_result_says_how_to_make_one(tmp_path: Path):
    assert benchtab.latest_result(tmp_path) is None
    assert "siliconlab bench" in benchtab.describe(None, tmp_path)


def test_quick_bench_command_is_a_small_real_text_bench(tmp_path: Path):
    command = benchtab.quick_bench_command(["onnxruntime-cpu-fp32", "torch-cpu-fp32"], tmp_path)
    assert command[1:5] == ["-m", "siliconlab", "bench", "minilm"]
    assert "--quick" in command and command[command.index("--units") + 1] == "onnxruntime-cpu-fp32,torch-cpu-fp32"


def test_progress_follows_the_benchs_own_plan():
    assert benchtab.PLANNED.search("bench minilm: 2 unit(s) x 1 workload(s), 2 thread(s)").groups() == ("2", "1")
