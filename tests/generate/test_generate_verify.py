"""`siliconlab verify` on a decoder artifact: its files, then its own kind's gate (generation parity) re-run; it
once loaded every artifact as an encoder unit and reported a decoder as "could not run"."""

from __future__ import annotations

import json
from pathlib import Path

from siliconlab.convert.manifest import MANIFEST
from siliconlab.convert.pipeline import Converter
from siliconlab.convert.verify import artifact_kind, verify_folder
from siliconlab.models import resolve
from siliconlab.units import registry


def test_verify_re_runs_a_decoder_artifacts_generation_gate(tiny_llama: Path, artifact_cache: Path):
    outcome = Converter(resolve(str(tiny_llama)), artifact_cache, 1).convert_unit(
        registry.get("decoder", "torch-cpu-fp32")
    )
    assert outcome.ok and outcome.artifact_dir is not None, outcome.error
    result = verify_folder(outcome.artifact_dir, threads=1)
    assert result.ok, result.defects
    assert result.parity.startswith("teacher-forced argmax agreement 100.0%")


def test_an_artifact_from_before_manifests_named_their_kind(tiny_llama: Path, artifact_cache: Path):
    folder = artifact_cache / tiny_llama.name / "torch-cpu-fp32"
    if not folder.is_dir():
        Converter(resolve(str(tiny_llama)), artifact_cache, 1).convert_unit(registry.get("decoder", "torch-cpu-fp32"))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.pop("kind", None)
    assert artifact_kind(folder, manifest) == "decoder"  # told by the config.json every decoder artifact carries
    assert artifact_kind(folder, {"task": "embedding"}) == "encoder"
