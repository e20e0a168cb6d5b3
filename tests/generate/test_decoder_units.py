"""The OpenVINO, MLX and Core ML decoder units on tiny models: each converts and passes its teacher-forced parity
gate (Core ML: its spec and its traced module here, prediction on macOS), and the fp32 ones write the fp32 model's
greedy continuation at batch 2 (parity itself runs at batch 1)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert.kinds import GenerationGate
from siliconlab.convert.pipeline import Converter
from siliconlab.models import resolve
from siliconlab.models.generative import RandomGenerativeSource
from siliconlab.units import registry
from siliconlab.units.mlx.unit import APPLE_SILICON

UNITS = ["openvino-cpu-fp32", "openvino-cpu-int8", "mlx"]
#: A smaller parity reference than an artifact's (6 x 24): the gate is the same, the test stays fast.
PROMPTS, STEPS = 3, 8


def _available_or_skip(name: str) -> None:
    available = registry.get("decoder", name).availability()
    if not available.ok:
        pytest.skip(f"{name} cannot run here: {available.reason}")


@pytest.fixture(scope="module")
def llama_converter(tiny_llama: Path, artifact_cache: Path) -> Converter:
    return Converter(resolve(str(tiny_llama)), artifact_cache, 1, gate=GenerationGate(PROMPTS, STEPS))


@pytest.mark.parametrize("name", UNITS)
def test_decoder_unit_passes_its_gate_and_generates_a_batch(llama_converter: Converter, name: str) -> None:
    _available_or_skip(name)
    unit = registry.get("decoder", name)
    outcome = llama_converter.convert_unit(unit)
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["steps"] == PROMPTS * STEPS
    if unit.precision == "fp32":
        assert parity["agreement"] == 1.0 and parity["free_run_match"] == 1.0 and parity["cosine_min"] > 0.99999
    else:
        assert parity["agreement"] >= 0.95 and parity["cosine_min"] >= 0.99
    runner = unit.load(outcome.artifact_dir, 1)
    prompts = np.stack([p[0, :8] for p in llama_converter.reference().prompts[:2]])
    expected = _torch_greedy(llama_converter, prompts, 6)
    got = runner.generate(prompts, 6)
    if unit.precision == "fp32":
        np.testing.assert_array_equal(got, expected)
    else:
        assert got.shape == expected.shape and (got == expected).mean() >= 0.5


def _torch_greedy(converter: Converter, prompts: np.ndarray, steps: int) -> np.ndarray:
    from siliconlab.units.base import GreedyDecoderMixin
    from siliconlab.units.torch.cpu_generate import TorchDecoderRunner

    class Loop(GreedyDecoderMixin, TorchDecoderRunner):
        pass

    model = converter.source.load()
    return Loop(model.model, model.max_length).generate(prompts, steps)


def test_mlx_runs_gpt2_with_its_learned_positions(artifact_cache: Path) -> None:
    _available_or_skip("mlx")
    overrides = {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 64, "vocab_size": 512}
    source = RandomGenerativeSource("gpt2-tiny", "GPT2Config", "2 layers, 64 wide", overrides)
    converter = Converter(source, artifact_cache, 1, gate=GenerationGate(PROMPTS, STEPS))
    outcome = converter.convert_unit(registry.get("decoder", "mlx"))
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["agreement"] == 1.0 and parity["cosine_min"] > 0.99999


def test_mlx_refuses_an_architecture_it_does_not_implement() -> None:
    pytest.importorskip("mlx.core", reason="mlx is not installed")
    from siliconlab.units.mlx.causal import check_supported

    with pytest.raises(ValueError, match="rope type 'llama3'"):
        check_supported({"model_type": "llama", "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}})
    with pytest.raises(ValueError, match="not 'phi'"):
        check_supported({"model_type": "phi"})


# --- Core ML: the stateful program converts here; it predicts only on macOS 15+ ------------------------------------


@pytest.fixture(scope="module")
def coreml_outcome(llama_converter: Converter):  # noqa: ANN201 - a convert.pipeline.UnitOutcome
    """The tiny Llama through the decoder pipeline on coreml-gpu, once: converted wherever coremltools installs."""
    pytest.importorskip("coremltools", reason="coremltools is not installed (pip install -e '.[apple]')")
    return llama_converter.convert_unit(registry.get("decoder", "coreml-gpu"))


def test_coreml_decoder_converts_with_its_kv_cache_as_state(coreml_outcome) -> None:
    assert coreml_outcome.ok, coreml_outcome.error
    manifest = coreml_outcome.manifest
    spec = manifest["structure"]
    assert spec["states"] == {"keyCache": [2, 1, 2, 128, 16], "valueCache": [2, 1, 2, 128, 16]}
    assert spec["inputs"] == ["input_ids", "causal_mask"] and spec["outputs"] == ["logits"]
    assert spec["ops"]["write_state"] == 4 and spec["ops"]["scaled_dot_product_attention"] == 2
    assert (
        manifest["graph"]["deployment_target"] == "macOS15"
        and (coreml_outcome.artifact_dir / "decoder.mlpackage").is_dir()
    )
    module = manifest["parity"]["converted_module"]  # the traced module, in PyTorch, through the same runner
    assert module["passed"] and module["agreement"] == 1.0 and module["free_run_match"] == 1.0
    if sys.platform != "darwin":
        assert manifest["verified"] == "structure" and manifest["parity"]["passed"] is None
        assert manifest["parity"]["reason"] == "CoreML prediction needs macOS"


def test_the_stateful_runner_matches_torch_on_a_batch_and_stops_at_its_cache(llama_converter) -> None:
    """Rows run one state each; a step past the cache's length is refused rather than wrapped around."""
    from siliconlab.units.coreml.decoder import StatefulDecoderRunner, TorchStatefulEngine, stateful_llama

    module = stateful_llama(llama_converter.source.load().model, 128)
    runner = StatefulDecoderRunner(TorchStatefulEngine(module), 128)
    prompts = np.stack([p[0, :8] for p in llama_converter.reference().prompts[:2]])
    np.testing.assert_array_equal(runner.generate(prompts, 6), _torch_greedy(llama_converter, prompts, 6))
    with pytest.raises(ValueError, match="holds 4 positions"):
        StatefulDecoderRunner(TorchStatefulEngine(module), 4).prefill(np.ones((1, 5), dtype=np.int64))


@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML prediction needs macOS (15+ for stateful models)")
def test_coreml_decoder_predicts_within_the_fp16_gate_on_macos(coreml_outcome) -> None:
    parity = coreml_outcome.manifest["parity"]
    assert coreml_outcome.manifest["verified"] == "parity" and parity["passed"], parity
    assert parity["agreement"] >= 0.98 and parity["cosine_min"] >= 0.999


@pytest.mark.skipif(not APPLE_SILICON, reason="MLX on Metal needs macOS on Apple silicon")
def test_mlx_decoder_runs_on_metal() -> None:
    import mlx.core as mx

    assert mx.metal.is_available() and registry.get("decoder", "mlx").device == "gpu"


def test_bench_leaves_out_mlx_off_apple_silicon_unless_named() -> None:
    timed = [unit.name for unit in registry.select("decoder", "all", timing=True)]
    assert "openvino-cpu-fp32" in timed or not registry.get("decoder", "openvino-cpu-fp32").availability().ok
    if not APPLE_SILICON:
        assert "mlx" not in timed
        assert [unit.name for unit in registry.select("decoder", "mlx", timing=True)] == ["mlx"]
