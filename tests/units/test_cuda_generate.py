"""The static-cache decoder behind the CUDA-graph generator (units/torch/cuda_generate.py, fused_llama.py).

The step logic runs eagerly on the CPU here and must give HF `generate`'s greedy tokens exactly (tiny random
Llama and GPT-2, batch 2 with left padding); the graph capture itself needs a GPU and skips with the reason.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.units.torch.cuda_generate import CudaGraphGenerator, availability
from siliconlab.units.torch.static_cache import StaticCacheDecoder

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here")
NEW = 12


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    # initializer_range 0.2: a random model with std 0.02 repeats one token forever, which would hide a wrong
    # position or cache slot; with 0.2 the greedy continuations vary from step to step.
    config = LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=256, tie_word_embeddings=True, max_position_embeddings=128, initializer_range=0.2,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
    )  # fmt: skip
    torch.manual_seed(0)
    return _quiet(LlamaForCausalLM(config).eval())


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=256, n_positions=128, initializer_range=0.2)
    config.bos_token_id = config.eos_token_id = None
    torch.manual_seed(0)
    return _quiet(GPT2LMHeadModel(config).eval())


def _quiet(model):
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: torch's intra-op threads only spin on a shared CPU (10x the CPU time here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prompts():
    ids = torch.randint(0, 256, (3, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2, :3] = 0  # row 2: left-padded, 4 real tokens
    return ids, mask


def _hf(model, ids, mask):
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False, cache_implementation="static"
        )
    return out[:, ids.shape[1] :].cpu()


def _check_against(decoder, want, ids, mask):
    """One padded batch, the unpadded rows alone, and the padded row cut to its real tokens: HF's tokens."""
    assert torch.equal(decoder.generate(ids, NEW, attention_mask=mask), want)
    assert torch.equal(decoder.generate(ids[:2], NEW), want[:2])
    assert torch.equal(decoder.generate(ids[2:, 3:], NEW), want[2:])


@pytest.fixture(scope="module")
def llama_reference(prompts):
    model = _llama()
    return model, _hf(model, *prompts)


@pytest.mark.parametrize("fuse", [False, True, "reduce"], ids=["hf-step", "fused-sdpa", "fused-reduce"])
def test_llama_greedy_matches_hf_generate(llama_reference, prompts, fuse):
    import copy

    model, want = llama_reference
    assert len(set(want[0].tolist())) > 3, "the reference continuation should not be one repeated token"
    decoder = StaticCacheDecoder(copy.deepcopy(model), max_batch=3, max_len=64, fuse=fuse)
    _check_against(decoder, want, *prompts)
    assert decoder.ttft is not None and decoder.tokens_per_second and decoder.decode_steps == NEW - 1


def test_forced_logits_match_a_full_forward(llama_reference, prompts):
    import copy

    model, want = llama_reference
    ids = prompts[0][:2]
    with torch.no_grad():
        full = model(torch.cat([ids, want[:2]], dim=1)).logits[:, ids.shape[1] - 1 : -1]
    for fuse in (False, True):
        decoder = StaticCacheDecoder(copy.deepcopy(model), max_batch=2, max_len=64, fuse=fuse)
        got = decoder.forced_logits(ids, want[:2])
        assert got.shape == full.shape
        assert torch.allclose(got, full, atol=1e-4), (fuse, (got - full).abs().max())


def test_gpt2_greedy_matches_hf_generate(prompts):
    model = _gpt2()
    _check_against(StaticCacheDecoder(model, max_batch=3, max_len=64), _hf(model, *prompts), *prompts)


def test_streaming_chunks_and_eos(llama_reference, prompts):
    model, want = llama_reference
    ids, want = prompts[0][:2], want[:2]
    decoder = StaticCacheDecoder(model, max_batch=2, max_len=64)
    chunks: list[torch.Tensor] = []
    out = decoder.generate(ids, NEW, on_token=chunks.append, stream_every=5)
    assert [c.shape[1] for c in chunks] == [1, 5, 5, 1]  # first token alone (TTFT), then every 5
    assert torch.equal(torch.cat(chunks, dim=1), out) and torch.equal(out, want)
    eos = int(want[0, 6])
    stopped = decoder.generate(ids[:1], NEW, eos_token_id=eos, stream_every=4)
    first = want[0].tolist().index(eos)
    assert stopped[0].tolist() == want[0, : first + 1].tolist()  # cut right after the first EOS
    assert decoder.decode_steps <= 8  # stopped at the chunk boundary after it, not at NEW


def test_bad_input_is_a_usage_error(llama_reference):
    decoder = StaticCacheDecoder(llama_reference[0], max_batch=2, max_len=16)
    ids = torch.zeros((1, 8), dtype=torch.long)
    with pytest.raises(UsageError, match="exceed max_len"):
        decoder.generate(ids, 9)
    with pytest.raises(UsageError, match="max_batch"):
        decoder.generate(torch.zeros((3, 4), dtype=torch.long), 2)
    with pytest.raises(UsageError, match="pad on the left"):
        decoder.generate(ids, 2, attention_mask=torch.tensor([[1] * 7 + [0]]))
    with pytest.raises(UsageError, match="entries for input_ids"):
        decoder.generate(ids, 2, attention_mask=torch.ones((1, 5)))
    with pytest.raises(UsageError, match="max_new_tokens"):
        decoder.generate(ids, 0)
    with pytest.raises(UsageError, match="positions"):
        StaticCacheDecoder(llama_reference[0], max_len=4096)
    with pytest.raises(UsageError, match="model_type"):
        StaticCacheDecoder(_gpt2(), max_len=64, fuse=True)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device: the no-device error cannot be shown")
def test_without_cuda_the_generator_says_why(llama_reference):
    assert not availability().ok and "CUDA" in availability().reason
    with pytest.raises(SiliconlabError, match="needs a CUDA device"):
        CudaGraphGenerator(llama_reference[0])


def test_import_stays_light():
    code = (
        "import sys, siliconlab.units.torch.cuda_generate, siliconlab.units.torch.fused_llama;"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@needs_cuda
@pytest.mark.parametrize("fuse", [False, True])
def test_graph_replay_matches_hf_generate_on_gpu(prompts, fuse):
    model = _llama().to("cuda", torch.float32)
    ids, mask = prompts
    want = _hf(model, ids.cuda(), mask.cuda())
    generator = CudaGraphGenerator(model, dtype=torch.float32, max_batch=3, max_len=64, fuse=fuse)
    _check_against(generator, want, ids, mask)
    assert all(slot.graph is not None for slot in generator._slots.values())
