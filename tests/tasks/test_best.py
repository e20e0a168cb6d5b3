"""unit="best": the latest bench of this model on this machine decides, for every kind; otherwise the kind's
default order (units/registry.py)."""

from __future__ import annotations

import json
from pathlib import Path

from siliconlab.tasks.best import RECORD, ranked_units, write_record
from siliconlab.units.registry import default_order

MACHINE = {"cpu": "AMD EPYC", "cores_logical": 2, "gpus": []}


def _row(unit: str, p50: float, passed: bool = True, rounds: tuple[float, float] = (4.0, 4.4)) -> dict:
    return {"unit": unit, "workload": "text", "batch": 1, "latency_ms": {"p50": p50},
            "parity": {"passed": passed}, "speedup_rounds": {"min": rounds[0], "max": rounds[1]}}  # fmt: skip


def _gen(unit: str, rate: float | None, batch: int = 1, passed: bool = True, flagged: bool = False) -> dict:
    """A generation bench row; rate None: a time-to-first-token row (one new token, no decode rate)."""
    row = {"unit": unit, "workload": "generation", "batch": batch, "new_tokens": 1 if rate is None else 128,
           "parity": {"passed": passed}, "contention": {"flagged": flagged}}  # fmt: skip
    if rate is not None:
        row["decode_tokens_per_s"] = rate
    return row


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
    ranked, why = ranked_units(tmp_path, MACHINE)
    assert ranked == default_order("encoder") and "no bench" in why
    write_record(tmp_path, {"machine": MACHINE, "results": [_row("torch-cpu-fp32", 12.0)]})
    ranked, why = ranked_units(tmp_path, {**MACHINE, "cpu": "Apple M3"})
    assert ranked == default_order("encoder") and "another machine" in why


def test_only_batch1_real_text_rows_are_recorded(tmp_path: Path):
    fixed = {**_row("torch-cpu-fp32", 1.0), "workload": "fixed"}
    assert write_record(tmp_path, {"machine": MACHINE, "results": [fixed]}) is None


def test_a_decoder_is_ranked_by_batch1_decode_tokens_per_second(tmp_path: Path):
    rows = [
        _gen("torch-cpu-fp32", 40.0),
        _gen("onnxruntime-cpu-int8", 90.0),
        _gen("onnxruntime-cpu-fp32", None),  # TTFT row: no decode rate, not ranked
        _gen("onnxruntime-cpu-fp32", 60.0),
        _gen("openvino-cpu-fp32", 500.0, batch=8),  # batch 8: not what one chat turn sees
        _gen("openvino-cpu-int8", 200.0, passed=False),
        _gen("onnxruntime-cpu-int4", 150.0, flagged=True),  # measured under contention
    ]
    path = write_record(tmp_path, {"machine": MACHINE, "results": rows})
    assert path is not None and json.loads(path.read_text())["metric"] == "decode_tokens_per_s"
    ranked, why = ranked_units(tmp_path, MACHINE, "decoder")
    assert ranked == ["onnxruntime-cpu-int8", "onnxruntime-cpu-fp32", "torch-cpu-fp32"] and "fastest stable" in why


def test_a_record_of_the_other_kind_is_not_read_as_a_ranking(tmp_path: Path):
    write_record(tmp_path, {"machine": MACHINE, "results": [_row("onnxruntime-cpu-fp32", 4.0)]})
    ranked, why = ranked_units(tmp_path, MACHINE, "decoder")
    assert ranked == default_order("decoder") and "decode_tokens_per_s" in why


def test_a_record_written_before_metrics_were_named_still_ranks_encoders(tmp_path: Path):
    rows = [{"unit": "torch-cpu-fp32", "p50_ms": 9.0, "parity_passed": True, "stable": True},
            {"unit": "onnxruntime-cpu-fp32", "p50_ms": 3.0, "parity_passed": True, "stable": True}]  # fmt: skip
    old = {"created": "2026-01-01T00:00:00+00:00", "machine": "AMD EPYC|2|", "rows": rows}
    (tmp_path / RECORD).write_text(json.dumps(old))
    assert ranked_units(tmp_path, MACHINE)[0] == ["onnxruntime-cpu-fp32", "torch-cpu-fp32"]
