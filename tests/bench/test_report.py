"""Figures derived from rows: speedup vs the baseline on the same shape. (`compare` is tested in tests/cli.)"""

from __future__ import annotations

from siliconlab.bench.results import add_speedups


def test_speedup_is_relative_to_the_baseline_on_the_same_shape():
    rows = [
        {"unit": "base", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 10.0}},
        {"unit": "fast", "workload": "fixed", "batch": 1, "seq": 8, "latency_ms": {"p50": 2.5}},
        {"unit": "fast", "workload": "fixed", "batch": 2, "seq": 8, "latency_ms": {"p50": 4.0}},
    ]
    add_speedups(rows, "base")
    assert [r["speedup"] for r in rows] == [1.0, 4.0, None]
