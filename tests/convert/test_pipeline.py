"""The conversion pipeline: artifacts are reused only while their inputs are unchanged; failures stay per unit."""

from __future__ import annotations

import json
from pathlib import Path

from siliconlab.convert import Converter, convert_all
from siliconlab.convert.manifest import MANIFEST
from siliconlab.models import resolve
from siliconlab.units import get_unit, select_units


def test_unchanged_inputs_reuse_the_artifact(tiny_bert: Path, artifact_cache: Path):
    unit = select_units("onnxruntime-cpu-fp32")[0]
    converter = Converter(resolve(str(tiny_bert)), artifact_cache, threads=2)
    first = converter.convert_unit(unit)
    again = converter.convert_unit(unit)
    assert again.status == "cached" and again.manifest["created"] == first.manifest["created"]
    rebuilt = converter.convert_unit(unit, force=True)
    assert rebuilt.status == "converted"


def test_a_changed_recipe_or_hash_rebuilds(tiny_bert: Path, tmp_path: Path):
    """The manifest's recipe and source hash are the cache key: editing either makes the artifact stale."""
    converter = Converter(resolve(str(tiny_bert)), tmp_path, threads=1)
    unit = get_unit("torch-cpu-fp32")
    first = converter.convert_unit(unit)
    assert first.status == "converted"
    path = first.artifact_dir / MANIFEST
    for key, stale in (("recipe", "0-old"), ("source_hash", "0" * 16)):
        manifest = json.loads(path.read_text())
        manifest[key] = stale
        path.write_text(json.dumps(manifest))
        outcome = converter.convert_unit(unit)
        assert outcome.status == "converted", key
        assert json.loads(path.read_text())[key] != stale


def test_one_failing_unit_does_not_stop_the_others(tiny_bert: Path, tmp_path: Path):
    from siliconlab.units.torch.cpu import TorchCpuFp32

    class Exploding(TorchCpuFp32):
        name = "torch-cpu-fp32"

        def convert(self, model, out_dir):
            raise RuntimeError("exporter crashed\nwith a long traceback")

    outcomes = convert_all(resolve(str(tiny_bert)), [Exploding(), get_unit("onnxruntime-cpu-fp32")], tmp_path, 1)
    assert [o.status for o in outcomes] == ["failed", "converted"]
    assert outcomes[0].error == "exporter crashed"  # one line: no traceback, no exception class
    assert not list((tmp_path / tiny_bert.name).glob(".torch-cpu-fp32.tmp-*"))  # the work folder is cleaned up
