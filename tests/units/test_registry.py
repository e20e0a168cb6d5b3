"""The registry, every unit: availability, convert + parity on tiny random BERTs, dynamic axes, classifier logits.

Parametrized over the registry; a unit that cannot run here skips with its own reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert import Converter, load_artifact
from siliconlab.models import resolve
from siliconlab.units import REGISTRY

UNITS = sorted(REGISTRY)


def _unit_or_skip(name: str):
    unit = REGISTRY[name]()
    available = unit.availability()
    if not available.ok:
        pytest.skip(f"{name} unavailable: {available.reason}")
    return unit


def test_every_unit_reports_availability_with_a_reason():
    for name in UNITS:
        info = REGISTRY[name]().describe()
        assert info["unit"] == name
        assert isinstance(info["available"], bool) and isinstance(info["reason"], str)
        if info["available"]:
            assert info["reason"] == "" and info["convertible"], name
        else:
            assert info["reason"].strip(), f"{name} is unavailable without a reason"
    assert REGISTRY["torch-cpu-fp32"]().describe()["available"]  # the baseline needs only torch: runs everywhere


@pytest.mark.parametrize("name", UNITS)
def test_convert_and_parity_on_tiny_bert(name: str, tiny_bert: Path, artifact_cache: Path):
    unit = _unit_or_skip(name)
    outcome = Converter(resolve(str(tiny_bert)), artifact_cache, threads=2).convert_unit(unit)
    assert outcome.ok, outcome.error
    manifest = outcome.manifest
    assert manifest["parity"]["passed"] and manifest["parity"]["cosine_min"] >= unit.cosine_min
    for key in (
        "unit",
        "model",
        "source_hash",
        "precision",
        "library_versions",
        "conversion_seconds",
        "artifact_bytes",
        "graph",
        "parity",
    ):
        assert key in manifest
    assert (outcome.artifact_dir / "tokenizer.json").is_file()


@pytest.mark.parametrize("name", UNITS)
def test_dynamic_batch_and_sequence_axes(name: str, tiny_bert: Path, artifact_cache: Path):
    unit = _unit_or_skip(name)
    outcome = Converter(resolve(str(tiny_bert)), artifact_cache, threads=2).convert_unit(unit)
    assert outcome.ok, outcome.error
    runner, _ = load_artifact(outcome.artifact_dir, unit, threads=1)
    for batch, seq in ((1, 5), (3, 17), (2, 64)):
        ids = np.random.default_rng(batch).integers(1000, 2000, size=(batch, seq), dtype=np.int64)
        out = runner.run(ids, np.ones_like(ids))
        assert out["token_states"].shape == (batch, seq, 64)
        assert out["sentence_embedding"].shape == (batch, 64)
        np.testing.assert_allclose(np.linalg.norm(out["sentence_embedding"], axis=1), 1.0, rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in UNITS if REGISTRY[n].precision == "fp32"])
def test_classifier_logits_parity(name: str, tiny_classifier: Path, artifact_cache: Path):
    unit = _unit_or_skip(name)
    outcome = Converter(resolve(str(tiny_classifier)), artifact_cache, threads=2).convert_unit(unit)
    assert outcome.ok, outcome.error
    assert outcome.manifest["outputs"] == ["logits"]
    runner, _ = load_artifact(outcome.artifact_dir, unit, threads=1)
    ids = np.full((2, 9), 2000, dtype=np.int64)
    assert runner.run(ids, np.ones_like(ids))["logits"].shape == (2, 3)
