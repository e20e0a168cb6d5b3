"""One notion of "available": what `units` says is what `bench ... all` does."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.units import REGISTRY


def test_units_json_says_whether_bench_times_each_unit_and_why_not():
    rows = {row["unit"]: row for row in json.loads(CliRunner().invoke(app, ["units", "--json"]).stdout)}
    assert set(rows) == set(REGISTRY)
    for name, row in rows.items():
        unit = REGISTRY[name]()
        timed = unit.availability().ok and unit.timing_availability().ok
        assert row["timed"] == timed
        assert bool(row["timing_reason"]) == (not timed), row
    assert rows["torch-cpu-fp32"]["timed"] is True


def test_units_table_shows_not_timed_units_as_such():
    rows = json.loads(CliRunner().invoke(app, ["units", "--json"]).stdout)
    output = CliRunner().invoke(app, ["units"]).stdout
    for row in rows:
        if row["available"] and not row["timed"]:  # e.g. mlx's CPU build off Apple silicon
            line = next(line for line in output.splitlines() if f" {row['unit']} " in line)
            assert "not timed" in line
