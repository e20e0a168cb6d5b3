"""The converter reports its stages through the callback it is given; reuse reports no conversion."""

from __future__ import annotations

from pathlib import Path

from siliconlab.convert import Converter
from siliconlab.models import resolve
from siliconlab.progress import StageEvent
from siliconlab.units import get_unit


def test_a_first_conversion_reports_reference_convert_and_a_counted_parity_check(tiny_bert: Path, tmp_path: Path):
    events: list[StageEvent] = []
    converter = Converter(resolve(str(tiny_bert)), tmp_path, threads=1, progress=events.append)
    assert converter.convert_unit(get_unit("torch-cpu-fp32")).status == "converted"
    finished = {e.label.rpartition(": ")[2]: e for e in events if e.finished}
    assert {"fp32 reference outputs", "convert", "parity check", "load for parity"} <= set(finished)
    parity = finished["parity check"]
    assert parity.total and parity.done == parity.total, "each parity sentence counted, alone and in the batch"
    reference = finished["fp32 reference outputs"]
    assert reference.total and reference.done == reference.total
    counts = [e.done for e in events if e.stage_id == parity.stage_id]
    assert counts == sorted(counts) and len(counts) > 3, "counted text by text, so an ETA can be extrapolated"

    events.clear()
    assert converter.convert_unit(get_unit("torch-cpu-fp32")).status == "cached"
    labels = {e.label.rpartition(": ")[2] for e in events}
    assert "check cached artifact" in labels and "convert" not in labels and "parity check" not in labels


def test_a_classifier_reference_counts_its_agreement_texts(tiny_classifier: Path, tmp_path: Path):
    from siliconlab.convert.parity import AGREEMENT_TEXTS

    events: list[StageEvent] = []
    converter = Converter(resolve(str(tiny_classifier)), tmp_path, threads=1, progress=events.append)
    converter.reference()
    finished = [e for e in events if e.finished and e.label.endswith("fp32 reference outputs")]
    assert finished[0].total == finished[0].done > AGREEMENT_TEXTS
