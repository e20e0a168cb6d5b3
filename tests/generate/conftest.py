"""A tiny random Llama on disk (2 layers, hidden 64, MiniLM's WordPiece vocabulary with a chat template), so the
decoder units, parity, pipeline and CLI are tested in seconds; the real SmolLM2 has one slow test of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siliconlab.models.minilm import tokenizer_directory

#: A minimal ChatML-style template: the pipeline must lay a message out through it, like SmolLM2's.
TEMPLATE = (
    "{% for m in messages %}[CLS] {{ m['role'] }} : {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}[CLS] assistant : {% endif %}"
)


def save_tiny_llama(path: Path, max_positions: int = 128, seed: int = 5) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_directory())
    tokenizer.chat_template = TEMPLATE
    tokenizer.eos_token = "[SEP]"
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharper logits than init's 0.02 std: fewer near-ties, so argmax parity means something
        model.model.embed_tokens.weight.mul_(10)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_chat(tiny_llama: Path, artifact_cache: Path):  # noqa: ANN201 - a tasks.generate.GenerativeChat
    """The tiny Llama converted (parity-gated) and loaded once on torch-cpu-fp32 for the pipeline tests."""
    import siliconlab

    return siliconlab.load(str(tiny_llama), unit="torch-cpu-fp32", cache=artifact_cache, threads=1)
