"""`siliconlab compare`: exit 0 no regression, 1 a regression beyond threshold and spread, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app


def _result(p50: float, spread: float, model: str = "minilm", cpu: str = "x", threads: int = 2) -> dict:
    row = {
        "unit": "u",
        "workload": "fixed",
        "batch": 1,
        "seq": 8,
        "latency_ms": {"p50": p50, "p50_ci_low": p50 - spread, "p50_ci_high": p50 + spread},
    }
    return {
        "schema": "siliconlab.bench/3",
        "model": model,
        "machine": {"cpu": cpu, "gpus": []},
        "settings": {"threads": threads},
        "results": [row],
    }


def _compare(tmp_path: Path, a: dict, b: dict, *extra: str):
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return CliRunner().invoke(app, ["compare", str(pa), str(pb), "--threshold", "0.1", *extra])


@pytest.mark.parametrize(
    "after,spread,code",
    [(10.5, 0.2, 0), (13.0, 0.2, 1), (13.0, 2.0, 0), (8.0, 0.2, 0)],
    ids=["small-change", "regression", "within-spread", "faster"],
)
def test_compare_exit_code(tmp_path: Path, after: float, spread: float, code: int):
    result = _compare(tmp_path, _result(10.0, spread), _result(after, spread))
    assert result.exit_code == code, result.output


@pytest.mark.parametrize(
    "other,reason",
    [
        ({"model": "bert-base"}, "different models"),
        ({"cpu": "another cpu"}, "different machines"),
        ({"threads": 1}, "different thread counts"),
    ],
)
def test_compare_refuses_incomparable_results_without_force(tmp_path: Path, other: dict, reason: str):
    refused = _compare(tmp_path, _result(10.0, 0.2), _result(8.0, 0.2, **other))
    assert refused.exit_code == 2 and reason in refused.stderr and "--force" in refused.stderr
    forced = _compare(tmp_path, _result(10.0, 0.2), _result(8.0, 0.2, **other), "--force")
    assert forced.exit_code == 0 and reason in forced.stderr


def test_compare_bad_input_exits_2(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    not_result = CliRunner().invoke(app, ["compare", str(bad), str(bad)])
    assert not_result.exit_code == 2 and "not a siliconlab bench result" in not_result.stderr
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "nope.json"), str(bad)])
    assert missing.exit_code == 2 and "no such result file" in missing.stderr


def test_compare_with_no_shared_row_is_bad_input(tmp_path: Path):
    other = _result(10.0, 0.2)
    other["results"][0]["unit"] = "v"
    result = _compare(tmp_path, _result(10.0, 0.2), other)
    assert result.exit_code == 2 and "share no" in result.stderr
