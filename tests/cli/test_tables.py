"""Tables fit a 100-column terminal by default, every value whole (no '…'); `--wide` shows every column."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from siliconlab.bench.report import COLUMNS, NARROW_COLUMNS, load_result, print_table
from siliconlab.cli import app
from siliconlab.cli.common import console

#: A real bench result (bert-base on an H100, 6 units x 2 shapes), as `siliconlab bench` wrote it.
FIXTURE = Path(__file__).parent / "fixtures" / "bench-bert-base-gpu.json"


def _render(result: dict, wide: bool = False, width: int = 100) -> str:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    print_table(result, out, wide=wide)
    return out.file.getvalue()


def _assert_fits(text: str, width: int = 100) -> None:
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.fixture(autouse=True)
def _console_100_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 100)


def test_bench_table_fits_100_columns_with_every_value_whole():
    result = load_result(FIXTURE)
    text = _render(result)
    _assert_fits(text)
    header = next(line for line in text.splitlines() if "unit" in line)
    assert all(column in header for column in NARROW_COLUMNS)
    for row in result["results"]:
        assert row["unit"] in text and f"{row['latency_ms']['p50']:.2f}" in text


def test_bench_table_fits_with_the_longest_names_and_labels():
    """The widest cells the bench produces: the longest unit name, a budget label, a big throughput."""
    result = load_result(FIXTURE)
    row = copy.deepcopy(result["results"][0])
    row |= {"unit": "onnxruntime-tensorrt-fp16", "workload_label": "budget 12.5 ms S128", "workload": "budget"}
    row["throughput"]["sequences_per_s"] = 123456.7
    result["results"].append(row)
    text = _render(result)
    _assert_fits(text)
    assert "onnxruntime-tensorrt-fp16" in text and "123456.7" in text


def test_bench_table_wide_shows_every_column_whole():
    result = load_result(FIXTURE)
    text = _render(result, wide=True)
    assert "…" not in text
    header = next(line for line in text.splitlines() if "unit" in line)
    assert all(column in header for column in COLUMNS)
    assert max(len(line) for line in text.splitlines()) > 100  # printed past the console's 100 columns


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_units_table_fits_and_wide_shows_full_reasons():
    from siliconlab.units import REGISTRY

    _assert_fits(_invoke("units"))
    wide = _invoke("units", "--wide")
    assert "…" not in wide and "engine" in wide
    for unit in REGISTRY.values():
        reason = unit().availability().reason
        assert reason in wide.replace("\n", "") or not reason


def test_models_table_fits_and_shows_size_and_source_without_wide():
    default = _invoke("models")
    _assert_fits(default)
    assert "size" in default and "source" in default and "MiB" in default and "PyPI" in default
    assert "source" in _invoke("models", "--wide")


def test_compare_table_fits(tmp_path: Path):
    before = load_result(FIXTURE)
    after = copy.deepcopy(before)
    for row in after["results"]:
        row["latency_ms"] = {k: v * 1.5 for k, v in row["latency_ms"].items()}
    paths = [tmp_path / "before.json", tmp_path / "after.json"]
    for path, data in zip(paths, (before, after)):
        path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["compare", *map(str, paths)], catch_exceptions=False)
    assert result.exit_code == 1  # 50% slower everywhere: regressions
    _assert_fits(result.stdout)
    assert "REGRESSION" in result.stdout


def test_convert_table_fits(tiny_bert: Path, tmp_path: Path):
    """A converted unit and one unavailable here (its reason is the long detail that must wrap between words)."""
    from siliconlab.units import get_unit

    units = ["torch-cpu-fp32", "torch-cuda-fp32"]
    result = CliRunner().invoke(app, ["convert", str(tiny_bert), "--units", ",".join(units), "--out", str(tmp_path)])
    assert result.exit_code in (0, 1), result.output
    _assert_fits(result.stdout)
    assert all(unit in result.stdout for unit in units)
    if not get_unit("torch-cuda-fp32").availability().ok:
        assert "unavailable" in result.stdout
