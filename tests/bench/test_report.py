"""Figures derived from rows (speedup vs the baseline) and `compare` of two result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.bench.results import add_speedups
from siliconlab.cli import app


def test_speedup_is_relative_to_the_baseline_on_the_same_shape():
    rows = [
        {"unit": "base", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 10.0}},
        {"unit": "fast", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 2.5}},
        {"unit": "fast", "workload": "fixed", "batch": 2, "seq": 8, "latency_ms": {"p50": 4.0}},
    ]
    add_speedups(rows, "base")
    assert [r["speedup"] for r in rows] == [1.0, 4.0, None]


def _result(p50: float, spread: float) -> dict:
    row = {
        "unit": "u",
        "workload": "fixed",
        "batch": 1,
        "seq": 8,
        "latency_ms": {"p50": p50, "p50_ci_low": p50 - spread, "p50_ci_high": p50 + spread},
    }
    return {"schema": "siliconlab.bench/2", "machine": {"cpu": "x"}, "results": [row]}


@pytest.mark.parametrize(
    "after,spread,code",
    [(10.5, 0.2, 0), (13.0, 0.2, 1), (13.0, 2.0, 0), (8.0, 0.2, 0)],
    ids=["small-change", "regression", "within-spread", "faster"],
)
def test_compare_exit_code(tmp_path: Path, after: float, spread: float, code: int):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result(10.0, spread)))
    b.write_text(json.dumps(_result(after, spread)))
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--threshold", "0.1"])
    assert result.exit_code == code, result.output


def test_compare_rejects_a_non_result(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(app, ["compare", str(bad), str(bad)])
    assert result.exit_code == 1 and "not a siliconlab bench result" in result.stderr
