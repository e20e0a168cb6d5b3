"""torch-cuda-{bf16,fp16,fp32} decoder units (units/torch/cuda_decoder.py): registry, availability, and the runner.

The runner's logic (prefill/decode_step for teacher forcing, the one-token-ahead generate loop, stale caches)
runs here on the CPU around the eager `StaticCacheDecoder` and must pass the same fp32 generation gate as a
converted unit; the CUDA graph, the Triton step and the unit's convert/load need a GPU and skip with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siliconlab.convert.parity_generate import GenerationReference, check_generation_parity
from siliconlab.errors import UsageError
from siliconlab.units import registry
from siliconlab.units.base import FP32_AGREEMENT_MIN, FP32_COSINE_MIN, HALF_AGREEMENT_MIN
from siliconlab.units.torch.cuda_decoder import GraphDecoderRunner, step_kind
from siliconlab.units.torch.static_cache import StaticCacheDecoder

HAS_CUDA = torch.cuda.is_available()
GPU_UNITS = ("torch-cuda-bf16", "torch-cuda-fp16", "torch-cuda-fp32")
STEPS = 10


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    # initializer_range 0.2: greedy continuations that vary (std 0.02 repeats one token, hiding a wrong slot).
    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, tie_word_embeddings=True, max_position_embeddings=128, initializer_range=0.2,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = None, 0
    return model


@pytest.fixture(scope="module")
def model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer model: more threads only spin on a shared CPU
    yield _llama()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(model) -> GenerationReference:
    """fp32 HF greedy continuations and their teacher-forced logits: what parity_generate builds for a unit."""
    prompts = [np.random.default_rng(n).integers(0, 256, (1, n), dtype=np.int64) for n in (5, 9)]
    continuations, logits = [], []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.from_numpy(prompt)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=STEPS, do_sample=False)
            tokens = out[0, ids.shape[1] :]
            full = model(torch.cat([ids[0], tokens[:-1]])[None]).logits[0, ids.shape[1] - 1 :]
            continuations.append(tokens.numpy())
            logits.append(full.numpy())
    return GenerationReference(prompts, continuations, logits)


def test_units_are_registered_first_in_the_default_order():
    order = registry.default_order("decoder")
    assert set(GPU_UNITS) <= set(registry.names("decoder"))
    assert order[:2] == ["torch-cuda-fp16", "torch-cuda-bf16"] and order[-1] == "torch-cpu-fp32"
    assert all(name in registry.names("decoder") for name in order)
    bf16, fp32 = registry.get("decoder", "torch-cuda-bf16"), registry.get("decoder", "torch-cuda-fp32")
    assert bf16.agreement_min == HALF_AGREEMENT_MIN and not bf16.exact_free_run
    assert fp32.agreement_min == FP32_AGREEMENT_MIN and fp32.cosine_min == FP32_COSINE_MIN and fp32.exact_free_run


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device: the no-device reason cannot be shown")
def test_without_a_gpu_they_say_why_and_are_left_out():
    for name in GPU_UNITS:
        info = registry.get("decoder", name).describe()
        assert not info["available"] and "no CUDA device" in info["reason"], info
    assert not {u.name for u in registry.select("decoder", "all")} & set(GPU_UNITS)


def test_step_kind_names_the_step_or_why_not(model):
    from transformers import GPT2Config, GPT2LMHeadModel

    assert step_kind(GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))).startswith(
        "HF forward, CUDA graph (model_type 'gpt2'"
    )
    kind = step_kind(model)
    assert kind == "Triton Llama step, CUDA graph" or kind == "HF forward, CUDA graph (triton is not installed)"


def test_runner_passes_the_fp32_generation_gate_on_the_cpu(model, reference):
    """The exact check a converted unit gets (teacher-forced steps, free run): all steps agree."""
    runner = GraphDecoderRunner(StaticCacheDecoder(model, max_batch=2, max_len=64, fuse=True), 64)
    parity = check_generation_parity(runner, reference, FP32_AGREEMENT_MIN, 0.9999, exact_free_run=True)
    assert parity.passed and parity.agreement == 1.0 and parity.steps == 2 * STEPS, parity.summary()
    assert parity.free_run_prefix_min == STEPS
    assert len(set(reference.continuations[0].tolist())) > 3  # the continuation is not one repeated token


def test_generate_streams_each_token_and_stops_when_told(model, reference):
    runner = GraphDecoderRunner(StaticCacheDecoder(model, max_batch=2, max_len=64, fuse=True), 64)
    prompt, want = reference.prompts[0], reference.continuations[0]
    seen: list[np.ndarray] = []
    out = runner.generate(prompt, STEPS, lambda t: seen.append(t))
    assert out.shape == (1, STEPS) and out[0].tolist() == want.tolist()
    assert [int(t[0]) for t in seen] == want.tolist() and all(t.shape == (1,) for t in seen)
    calls: list[np.ndarray] = []

    def stop_at_four(tokens: np.ndarray) -> bool:
        calls.append(tokens)
        return len(calls) == 4

    stopped = runner.generate(prompt, STEPS, stop_at_four)
    assert stopped[0].tolist() == want[:4].tolist() and len(calls) == 4  # the 4th is kept, then no more
    batch = runner.generate(np.concatenate([prompt, prompt]), 3)
    assert batch.shape == (2, 3) and batch[0].tolist() == batch[1].tolist() == want[:3].tolist()


def test_stale_or_full_caches_and_bad_lengths_are_usage_errors(model, reference):
    runner = GraphDecoderRunner(StaticCacheDecoder(model, max_batch=1, max_len=16, fuse=True), 16)
    prompt = reference.prompts[1]  # 9 tokens
    _, first = runner.prefill(prompt)
    runner.prefill(prompt)  # same batch size: the slot is refilled
    with pytest.raises(UsageError, match="overwritten by a later prefill"):
        runner.decode_step(np.array([1]), first)
    with pytest.raises(UsageError, match="max_new_tokens must be in 1..7"):
        runner.generate(prompt, 8)
    _, state = runner.prefill(prompt)
    for _ in range(7):
        _, state = runner.decode_step(np.array([1]), state)
    with pytest.raises(UsageError, match="cache is full"):
        runner.decode_step(np.array([1]), state)


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here: the CUDA-graph units convert and run on NVIDIA GPUs")
@pytest.mark.parametrize("name", GPU_UNITS)
def test_unit_converts_and_passes_its_gate_on_a_gpu(name, tmp_path):
    import importlib.util
    from pathlib import Path

    from siliconlab.convert.pipeline import Converter
    from siliconlab.models import resolve

    spec = importlib.util.spec_from_file_location(
        "generate_conftest", Path(__file__).parents[1] / "generate/conftest.py"
    )
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)  # the tiny Llama with a tokenizer the generation tests use
    source = resolve(str(helpers.save_tiny_llama(tmp_path / "tiny")))
    outcome = Converter(source, tmp_path / "cache", threads=2).convert_unit(registry.get("decoder", name))
    assert outcome.ok, outcome.error
    assert outcome.manifest["parity"]["passed"]
