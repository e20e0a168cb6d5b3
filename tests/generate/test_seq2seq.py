"""T5 (encoder-decoder) generation on a tiny config: torch-cpu-fp32 and onnxruntime-cpu-fp32 pass the fp32 gate,
write the same greedy batch, and the generation bench times it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert.kinds import GenerationGate
from siliconlab.convert.pipeline import Converter
from siliconlab.models import kind_of
from siliconlab.models.generative import RandomGenerativeSource
from siliconlab.units import registry

TINY_T5 = {"num_layers": 2, "num_decoder_layers": 2, "d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4,
           "vocab_size": 512}  # fmt: skip


@pytest.fixture(scope="module")
def t5_converter(artifact_cache: Path) -> Converter:
    source = RandomGenerativeSource("t5-tiny", "T5Config", "2+2 layers, 64 wide", TINY_T5)
    return Converter(source, artifact_cache, 1, gate=GenerationGate(prompts=3, steps=8))


def test_t5_units_are_their_own_kind(t5_converter: Converter) -> None:
    assert kind_of(t5_converter.source) == "seq2seq" == t5_converter.kind
    names = [u.name for u in registry.select("seq2seq", "all")]
    assert names[:2] == ["torch-cpu-fp32", "onnxruntime-cpu-fp32"]
    assert set(names[2:]) <= {"torch-cuda-fp32", "torch-cuda-bf16"}  # where a GPU is present
    assert registry.get("seq2seq", "onnxruntime-cpu-fp32").kind == "seq2seq"
    assert registry.get("decoder", "onnxruntime-cpu-fp32").kind == "decoder"


@pytest.mark.parametrize("name", ["torch-cpu-fp32", "onnxruntime-cpu-fp32"])
def test_t5_unit_passes_the_fp32_gate(t5_converter: Converter, name: str) -> None:
    unit = registry.get("seq2seq", name)
    outcome = t5_converter.convert_unit(unit)
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["steps"] == 24
    assert parity["agreement"] == 1.0 and parity["free_run_match"] == 1.0 and parity["cosine_min"] > 0.99999
    prompts = np.stack([p[0, :8] for p in t5_converter.reference().prompts[:2]])
    runner = unit.load(outcome.artifact_dir, 1)
    baseline = registry.get("seq2seq", "torch-cpu-fp32")
    reference = baseline.load(t5_converter.convert_unit(baseline).artifact_dir, 1)  # converted here if run alone
    expected = reference.generate(prompts, 6)  # Hugging Face generate, static cache
    np.testing.assert_array_equal(runner.generate(prompts, 6), expected)
    logits, cache = runner.prefill(prompts)
    assert logits.shape == (2, TINY_T5["vocab_size"]) and np.isfinite(logits).all()


def test_the_generation_bench_times_t5(t5_converter: Converter, artifact_cache: Path) -> None:
    from siliconlab.bench.generate import run_bench

    unit = registry.get("seq2seq", "onnxruntime-cpu-fp32")
    result = run_bench(t5_converter.source, [unit], artifact_cache, 1, quick=True)
    assert result["complete"] and not result["failures"], result["failures"]
    ttft = sorted(r["seq"] for r in result["results"] if r["new_tokens"] == 1)
    assert ttft == [32, 256]  # T5's relative positions: a 512-token context, so 1024 is left out
    decode = [r for r in result["results"] if r["new_tokens"] > 1]
    assert {r["batch"] for r in decode} == {1, 8} and all(r["decode_tokens_per_s"] > 0 for r in decode)


@pytest.mark.parametrize("name", ["torch-cuda-fp32", "torch-cuda-bf16"])
def test_t5_on_cuda_passes_its_gate(t5_converter: Converter, name: str) -> None:
    unit = registry.get("seq2seq", name)
    available = unit.availability()
    if not available.ok:
        pytest.skip(f"{name}: {available.reason}")
    outcome = t5_converter.convert_unit(unit)
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["agreement"] >= unit.agreement_min
    if name == "torch-cuda-fp32":
        assert parity["agreement"] == 1.0 and parity["free_run_match"] == 1.0
