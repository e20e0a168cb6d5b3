"""Charts leave no row out: every (unit, workload) of a result is drawn and labelled, titles name the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from siliconlab.bench import charts


def _row(unit: str, workload: str, batch: int, seq: int, label: str, p50: float, device: str = "cpu") -> dict:
    return {
        "unit": unit,
        "device": device,
        "workload": workload,
        "workload_label": label,
        "batch": batch,
        "seq": seq,
        "speedup": 1.0,
        "latency_ms": {"p50": p50, "p90": p50 * 1.1},
        "throughput": {"sequences_per_s": batch / p50 * 1e3},
    }


def _result(rows: list[dict], gpus: list | None = None) -> dict:
    return {
        "model": "minilm",
        "machine": {"cpu": "AMD EPYC", "gpus": gpus or []},
        "settings": {"baseline": "torch-cpu-fp32"},
        "results": rows,
    }


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    saved: list[Any] = []

    def keep(fig: Any, path: Path) -> Path:
        saved.append(fig)
        return path

    monkeypatch.setattr(charts, "_save", keep)
    return saved


def _drawn(fig: Any) -> set[tuple[str, str]]:
    """(panel title, unit) for every bar drawn."""
    return {(ax.get_title(), tick.get_text()) for ax in fig.axes for tick in ax.get_yticklabels() if tick.get_text()}


def test_text_workload_with_two_batches_draws_every_unit_in_both_panels(figures: list[Any], tmp_path: Path):
    rows = [
        _row(unit, "text", batch, seq, f"text B{batch}", 5.0 * batch)
        for unit, seq in (("torch-cpu-fp32", 27), ("onnxruntime-cpu-int8", 30))
        for batch in (1, 8)
    ]
    charts.write_charts(_result(rows), tmp_path / "r")
    drawn = _drawn(figures[0])
    assert drawn == {(f"text B{b}", u) for u in ("torch-cpu-fp32", "onnxruntime-cpu-int8") for b in (1, 8)}
    assert "vs torch-cpu-fp32" in figures[0]._suptitle.get_text()


def test_grid_gets_a_panel_per_shape_and_lines_per_fixed_value(figures: list[Any], tmp_path: Path):
    rows = [
        _row(unit, "fixed", batch, seq, f"B{batch} S{seq}", 1.0 + batch * seq / 100)
        for unit in ("torch-cpu-fp32", "openvino-cpu-fp32")
        for batch in (1, 8)
        for seq in (16, 128)
    ]
    made = charts.write_charts(_result(rows), tmp_path / "r")
    assert len(made) == 3
    assert {title for title, _ in _drawn(figures[0])} == {"B1 S16", "B8 S16", "B1 S128", "B8 S128"}
    lines = {line.get_label() for fig in figures[1:] for ax in fig.axes for line in ax.get_lines()}
    assert {"torch-cpu-fp32 B1", "torch-cpu-fp32 B8", "torch-cpu-fp32 S16", "openvino-cpu-fp32 S128"} <= lines
    titles = [ax.get_title() for fig in figures[1:] for ax in fig.axes]
    assert any("at batch 1, 8" in t for t in titles) and any("at seq 16, 128" in t for t in titles)


def test_gpu_rows_are_titled_with_the_gpu(figures: list[Any], tmp_path: Path):
    rows = [_row("torch-cuda-fp16", "fixed", 1, 128, "B1 S128", 0.4, device="cuda")]
    charts.write_charts(_result(rows, gpus=[{"name": "NVIDIA H100 80GB HBM3"}]), tmp_path / "r")
    title = figures[0]._suptitle.get_text()
    assert "NVIDIA H100" in title and "AMD EPYC" not in title


def test_the_latency_chart_carries_the_tables_flags(figures: list[Any], tmp_path: Path):
    """What the terminal table says, the PNG says: "unstable (a–b)" instead of a headline speedup, "!" on a unit
    measured under contention with the table's note under the chart, and a log axis when one whisker would
    squash every other bar."""
    steady = _row("onnxruntime-cpu-int8", "text", 1, 30, "text B1", 20.0)
    steady["speedup"], steady["speedup_rounds"] = 4.1, {"min": 4.0, "max": 4.2}
    shaky = _row("openvino-cpu-fp32", "text", 1, 30, "text B1", 40.0)
    shaky["speedup"], shaky["speedup_rounds"] = 21.57, {"min": 3.10, "max": 39.35}
    slow = _row("torch-cpu-fp32", "text", 1, 30, "text B1", 300.0)
    slow["latency_ms"]["p90"] = 905.0
    slow["contention"] = {"flagged": True, "reasons": ["other processes used 1.36 cores"]}
    charts.write_charts(_result([steady, shaky, slow]), tmp_path / "r")
    fig = figures[0]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("unstable (3.10–39.35)" in t for t in texts) and not any("21.57x" in t for t in texts)
    assert any("4.10x (4.00–4.20)" in t for t in texts)
    assert ("text B1", "torch-cpu-fp32 !") in _drawn(fig)
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "! text B1 measured under contention: other processes used 1.36 cores" in notes
    assert fig.axes[0].get_xscale() == "log" and "log scale" in fig.axes[0].get_xlabel()
