"""CoreML units: what can be verified on Linux is verified here; what needs a Mac is marked and skips elsewhere.

Here: CoreML conversion + structural checks of the .mlpackage (interface, enumerated shapes, op histogram,
precision, size, int8 weights), the ANE rewrite's fp32 parity, the runner's padding to enumerated shapes
(with the converted PyTorch module standing in for Core ML). macOS only: Core ML prediction parity per compute
unit, MLComputePlan placement. The powermetrics parser is tested in tests/monitor/, MLX in test_mlx.py (it needs
no coremltools).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from siliconlab.convert import Converter, load_artifact
from siliconlab.convert.parity import check_parity, reference_outputs
from siliconlab.data import parity_texts
from siliconlab.models import resolve
from siliconlab.models.reference import TorchRunner
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.units import REGISTRY, get_unit
from siliconlab.units.coreml import PREDICTION_NEEDS_MACOS, CoreMLUnit
from siliconlab.units.coreml.ane_bert import AneBert

COREML = [name for name, unit in REGISTRY.items() if issubclass(unit, CoreMLUnit)]
MACOS = sys.platform == "darwin"
needs_macos = pytest.mark.skipif(not MACOS, reason=PREDICTION_NEEDS_MACOS)
coremltools = pytest.importorskip("coremltools", reason="coremltools is not installed (pip install -e '.[apple]')")


def _cosine_min(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1, a.shape[-1]).double(), b.reshape(-1, b.shape[-1]).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


# ---- availability ---------------------------------------------------------------------------------------


def test_registry_has_the_apple_units():
    assert {"coreml-ane", "coreml-gpu", "coreml-cpu", "coreml-all", "mlx"} <= set(REGISTRY)
    assert any(REGISTRY[name].precision == "int8" for name in COREML)
    assert {REGISTRY[name].compute_unit for name in COREML} == {"CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY", "ALL"}


@pytest.mark.skipif(MACOS, reason="checks the reason shown off macOS")
def test_coreml_units_say_why_they_cannot_run_here_but_convert():
    for name in COREML:
        info = get_unit(name).describe()
        assert not info["available"] and info["reason"] == PREDICTION_NEEDS_MACOS
        assert info["convertible"], name


# ---- the ANE rewrite: fp32 parity with the stock model -----------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_classifier"])
def test_ane_rewrite_matches_pytorch_on_tiny_models(fixture: str, request: pytest.FixtureRequest):
    model = resolve(str(request.getfixturevalue(fixture))).load()
    stock, ane = EncoderWithHead(model.model, model.task).eval(), AneBert(model.model, model.task).eval()
    ids = torch.randint(1000, 20000, (3, 21), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded batch: padding must not leak into the valid tokens or the pooled output
    mask[2, 3:] = 0
    with torch.inference_mode():
        expected, got = stock(ids, mask), ane(ids, mask)
    for name, e, g in zip(model.output_names, expected, got):
        assert g.shape == e.shape, name
        if name == "token_states":
            for row, valid in enumerate(mask.sum(1).tolist()):
                assert _cosine_min(e[row, :valid], g[row, :valid]) >= 0.9999
        else:
            assert _cosine_min(e, g) >= 0.9999, name


def test_ane_rewrite_matches_pytorch_on_minilm():
    """Real weights, the real parity sentences (alone and as one padded batch), fp32: cosine >= 0.9999."""
    model = resolve("minilm").load()
    reference = reference_outputs(model, parity_texts())
    report = check_parity(
        TorchRunner(AneBert(model.model, model.task), output_names=model.output_names), model, reference, 0.9999
    )
    assert report.passed and report.token_cosine_min >= 0.9999, report.summary()


# ---- CoreML conversion and structural checks (Linux and macOS) ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_coreml(tiny_bert: Path, artifact_cache: Path):
    converter = Converter(resolve(str(tiny_bert)), artifact_cache, threads=1)
    return {name: converter.convert_unit(get_unit(name)) for name in COREML}


@pytest.mark.parametrize("name", COREML)
def test_coreml_converts_with_structure_checked(name: str, tiny_coreml, tiny_bert: Path):
    outcome = tiny_coreml[name]
    assert outcome.ok, outcome.error
    manifest, unit = outcome.manifest, get_unit(name)
    structure, parity = manifest["structure"], manifest["parity"]
    assert (outcome.artifact_dir / "model.mlpackage").is_dir()
    assert structure["reloaded"] and structure["format"] == "mlprogram"
    assert structure["compute_precision"] == "float16"
    assert structure["inputs"]["input_ids"]["dtype"] == "INT32"
    assert [1, 16] in structure["inputs"]["input_ids"]["enumerated_shapes"]
    assert structure["outputs"]["token_states"]["dims"] == [None, None, 64]
    assert structure["outputs"]["sentence_embedding"]["dims"] == [None, 64]
    assert structure["package_bytes"] > 0 and sum(structure["ops"].values()) > 50
    rewrite_ops = {"conv", "einsum"} if unit.ane_optimized else {"linear", "matmul"}
    assert rewrite_ops <= set(structure["ops"]), structure["ops"]
    assert parity["converted_module"]["passed"] and parity["converted_module"]["cosine_min"] >= 0.99
    if unit.weights == "int8":
        assert structure["quantized_weight_ops"] > 0
    if MACOS:
        assert manifest["verified"] == "parity" and parity["passed"]
    else:
        assert manifest["verified"] == "structure"
        assert parity["passed"] is None and parity["reason"] == PREDICTION_NEEDS_MACOS


def test_one_package_is_shared_and_cached(tiny_coreml, tiny_bert: Path, artifact_cache: Path):
    keys = {name: tiny_coreml[name].manifest["graph"]["package_key"] for name in COREML}
    assert keys["coreml-gpu"] == keys["coreml-cpu"] == keys["coreml-all"]  # the stock package, shared
    assert keys["coreml-ane"] != keys["coreml-gpu"]  # the ANE rewrite is its own package
    assert len(set(keys.values())) == 4  # stock / ANE, each fp16 and int8
    weights = "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"
    gpu, cpu = (tiny_coreml[name].artifact_dir / weights for name in ("coreml-gpu", "coreml-cpu"))
    assert gpu.stat().st_ino == cpu.stat().st_ino  # hard links: one copy on disk
    sizes = {name: tiny_coreml[name].manifest["structure"]["weight_bytes"] for name in COREML}
    assert sizes["coreml-ane-int8"] < sizes["coreml-ane"]
    again = Converter(resolve(str(tiny_bert)), artifact_cache, threads=1).convert_unit(get_unit("coreml-ane"))
    assert again.status == "cached"


def test_ane_optimized_switch_changes_the_package(tiny_bert: Path, tmp_path: Path):
    unit = get_unit("coreml-cpu")
    unit.ane_optimized = True
    outcome = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(unit)
    assert outcome.ok, outcome.error
    assert outcome.manifest["graph"]["ane_optimized"] and "einsum" in outcome.manifest["structure"]["ops"]
    assert outcome.manifest["recipe"].endswith("ane1")


@pytest.mark.slow
def test_minilm_coreml_manifests(artifact_cache: Path):
    converter = Converter(resolve("minilm"), artifact_cache, threads=2)
    for name in ("coreml-ane", "coreml-gpu"):
        outcome = converter.convert_unit(get_unit(name))
        assert outcome.ok, outcome.error
        manifest = json.loads((outcome.artifact_dir / "manifest.json").read_text())
        ops = manifest["structure"]["ops"]
        assert manifest["parity"]["converted_module"]["cosine_min"] >= 0.9999
        if name == "coreml-ane":  # 6 layers x 12 heads x (scores, weighted sum)
            assert ops["einsum"] == 6 * 12 * 2 and ops["conv"] == 6 * 6
        else:
            assert ops["linear"] == 6 * 6
        assert manifest["structure"]["outputs"]["token_states"]["dims"] == [None, None, 384]


# ---- the runner's padding to enumerated shapes (Core ML replaced by the converted PyTorch module) ----------


class _ModuleAsMLModel:
    """Stands in for coremltools.models.MLModel: predict() runs the converted module on the padded inputs."""

    def __init__(self, module: torch.nn.Module, names: tuple[str, ...], shapes: list[tuple[int, int]]):
        self.module, self.names, self.shapes, self.calls = module, names, set(shapes), []

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        assert ids.dtype == np.int32 and tuple(ids.shape) in self.shapes, ids.shape
        self.calls.append(ids.shape)
        with torch.inference_mode():
            out = self.module(torch.from_numpy(ids), torch.from_numpy(mask))
        return {name: t.numpy().astype(np.float16) for name, t in zip(self.names, out)}


def test_runner_pads_to_enumerated_shapes_without_changing_results(tiny_bert: Path):
    from siliconlab.units.coreml.export import enumerated_shapes
    from siliconlab.units.coreml.runner import CoreMLRunner

    model = resolve(str(tiny_bert)).load()
    module = AneBert(model.model, model.task).eval()
    shapes = enumerated_shapes(model.max_length)
    runner = object.__new__(CoreMLRunner)
    runner.model = _ModuleAsMLModel(module, model.output_names, shapes)
    runner.batches, runner.seqs = sorted({b for b, _ in shapes}), sorted({s for _, s in shapes})
    runner.output_names = model.output_names
    ids = np.random.default_rng(0).integers(1000, 2000, size=(37, 19), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[5, 7:] = 0
    got = runner.run(ids, mask)
    assert runner.model.calls == [(32, 32), (8, 32)]  # 37 rows: one full chunk, the rest padded to 8
    with torch.inference_mode():
        expected = module(torch.from_numpy(ids), torch.from_numpy(mask))
    assert got["token_states"].shape == (37, 19, 64) and got["sentence_embedding"].shape == (37, 64)
    assert _cosine_min(torch.from_numpy(got["sentence_embedding"]), expected[1]) > 0.999
    valid = mask.astype(bool)
    assert _cosine_min(torch.from_numpy(got["token_states"][valid]), expected[0][torch.from_numpy(valid)]) > 0.999
    with pytest.raises(ValueError, match="exceeds"):
        runner.run(np.ones((1, model.max_length + 1), dtype=np.int64), np.ones((1, model.max_length + 1)))


# ---- macOS only: Core ML prediction ------------------------------------------------------------------------


@needs_macos
@pytest.mark.parametrize("name", COREML)
def test_coreml_prediction_parity_on_macos(name: str, tiny_coreml):
    """On a Mac the Converter gates each unit on real Core ML prediction parity vs fp32 PyTorch."""
    outcome = tiny_coreml[name]
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["cosine_min"] >= get_unit(name).cosine_min


@needs_macos
@pytest.mark.parametrize("name", COREML)
def test_coreml_runner_dynamic_shapes_on_macos(name: str, tiny_coreml):
    runner, _ = load_artifact(tiny_coreml[name].artifact_dir, get_unit(name), threads=1)
    for batch, seq in ((1, 5), (3, 17), (9, 64)):
        ids = np.random.default_rng(batch).integers(1000, 2000, size=(batch, seq), dtype=np.int64)
        out = runner.run(ids, np.ones_like(ids))
        assert out["token_states"].shape == (batch, seq, 64) and out["sentence_embedding"].shape == (batch, 64)


@needs_macos
def test_compute_plan_reports_devices_on_macos(tiny_coreml):
    devices = tiny_coreml["coreml-ane"].manifest["structure"]["compute_plan_devices"]
    if isinstance(devices, dict):  # op counts per device: a real plan places every non-const op somewhere
        assert sum(devices.values()) > 0, devices
    else:
        assert devices.startswith("MLComputePlan unavailable"), devices
