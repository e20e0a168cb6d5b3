"""Every unit: convert + parity on tiny random BERTs, dynamic axes, and the artifact round trip.

Parametrized over the registry; a unit that cannot run here skips with its own reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert import Converter, load_artifact
from siliconlab.models import resolve
from siliconlab.units import REGISTRY, select_units

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
        assert info["available"] or info["reason"], f"{name} is unavailable without a reason"


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


def test_unchanged_inputs_reuse_the_artifact(tiny_bert: Path, artifact_cache: Path):
    unit = select_units("onnxruntime-cpu-fp32")[0]
    converter = Converter(resolve(str(tiny_bert)), artifact_cache, threads=2)
    first = converter.convert_unit(unit)
    again = converter.convert_unit(unit)
    assert again.status == "cached" and again.manifest["created"] == first.manifest["created"]
    rebuilt = converter.convert_unit(unit, force=True)
    assert rebuilt.status == "converted"


def test_parity_gate_fails_a_wrong_artifact(tiny_bert: Path, tmp_path: Path):
    """A unit whose artifact computes a different function must fail conversion with its figures."""
    from siliconlab.units.torch.cpu import TorchCpuFp32

    class BrokenTorch(TorchCpuFp32):
        name = "torch-cpu-fp32"

        def convert(self, model, out_dir):
            import torch

            with torch.no_grad():
                model.model.encoder.layer[0].output.dense.weight.mul_(3.0)
            return super().convert(model, out_dir)

    outcome = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(BrokenTorch())
    assert outcome.status == "failed"
    assert "parity failed" in outcome.error and "cosine min" in outcome.error
    assert not (tmp_path / tiny_bert.name / "torch-cpu-fp32").exists()
