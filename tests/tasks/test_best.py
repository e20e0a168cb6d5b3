"""unit="best": the latest bench of this model on this machine decides; otherwise the default order."""

from __future__ import annotations

from pathlib import Path

from siliconlab.tasks.best import DEFAULT_ORDER, ranked_units, write_record

MACHINE = {"cpu": "AMD EPYC", "cores_logical": 2, "gpus": []}


def _row(unit: str, p50: float, passed: bool = True, rounds: tuple[float, float] = (4.0, 4.4)) -> dict:
    return {"unit": unit, "workload": "text", "batch": 1, "latency_ms": {"p50": p50},
            "parity": {"passed": passed}, "speedup_rounds": {"min": rounds[0], "max": rounds[1]}}  # fmt: skip


def test_fastest_stable_parity_passing_unit_wins(tmp_path: Path):
    rows = [
        _row("torch-cpu-fp32", 12.0),
        _row("onnxruntime-cpu-int8", 2.0, rounds=(2.0, 6.0)),  # unstable: measured under contention
        _row("openvino-cpu-fp32", 3.0, passed=False),
        _row("onnxruntime-cpu-fp32", 4.0),
    ]
    write_record(tmp_path, {"machine": MACHINE, "results": rows})
    ranked, why = ranked_units(tmp_path, MACHINE)
    assert ranked == ["onnxruntime-cpu-fp32", "torch-cpu-fp32"] and "fastest stable" in why


def test_another_machine_or_no_record_falls_back_to_the_default_order(tmp_path: Path):
    assert ranked_units(tmp_path, MACHINE) == (list(DEFAULT_ORDER), ranked_units(tmp_path, MACHINE)[1])
    write_record(tmp_path, {"machine": MACHINE, "results": [_row("torch-cpu-fp32", 12.0)]})
    ranked, why = ranked_units(tmp_path, {**MACHINE, "cpu": "Apple M3"})
    assert ranked == list(DEFAULT_ORDER) and "another machine" in why


def test_only_batch1_real_text_rows_are_recorded(tmp_path: Path):
    fixed = {**_row("torch-cpu-fp32", 1.0), "workload": "fixed"}
    assert write_record(tmp_path, {"machine": MACHINE, "results": [fixed]}) is None
