"""Generative model sources: local causal-LM folders, architecture-only GPT-2 / T5, smollm2-chat's GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siliconlab.errors import UsageError
from siliconlab.models import BUILTIN, is_generative, resolve


def test_a_causal_lm_folder_resolves_to_a_generative_source(tiny_llama: Path) -> None:
    source = resolve(str(tiny_llama))
    assert is_generative(source)
    facts = source.describe()
    assert facts["task"] == "generation" and facts["architecture"] == "LlamaForCausalLM"
    model = source.load()
    assert model.task == "generation" and model.max_length == 128


def test_a_causal_folder_without_safetensors_is_refused(tmp_path: Path, tiny_llama: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_llama / "config.json").read_text())
    with pytest.raises(UsageError, match="safetensors"):
        resolve(str(tmp_path))


@pytest.mark.parametrize(("name", "params_m", "arch"), [("gpt2", 124.4, "GPT2LMHeadModel"),
                                                         ("t5-small", 60.5, "T5ForConditionalGeneration")])  # fmt: skip
def test_architecture_only_sources_describe_the_published_shapes(name: str, params_m: float, arch: str) -> None:
    source = BUILTIN[name]()
    assert source.architecture_only and "architecture only" in source.purpose
    facts = source.describe()
    assert facts["architecture"] == arch
    assert abs(facts["params"] / 1e6 - params_m) < 0.5


def test_random_sources_are_seeded_and_take_random_ids() -> None:
    """The gpt2 recipe on GPT-2's code path, shrunk (loading 124M random weights twice would take minutes here)."""
    import torch

    from siliconlab.models.generative import RandomGenerativeSource

    def small() -> RandomGenerativeSource:
        return RandomGenerativeSource("gpt2", "GPT2Config", "small", {"n_layer": 1, "n_embd": 32, "n_head": 2,
                                                                     "vocab_size": 500, "n_positions": 64})  # fmt: skip

    first, second = small().load(), small().load()
    assert first.tokenizer is None and first.max_length == 64
    weight = first.model.transformer.h[0].attn.c_attn.weight
    assert torch.equal(weight, second.model.transformer.h[0].attn.c_attn.weight)
    assert first.content_hash == small().content_hash() != BUILTIN["gpt2"]().content_hash()
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 500, (1, 8)))
    with torch.inference_mode():
        assert first.model(ids).logits.shape == (1, 8, 500)


def test_smollm2_is_described_from_its_gguf_without_converting(tmp_path: Path) -> None:
    from siliconlab.models.smollm2 import SmolLM2Source

    source = SmolLM2Source(cache=tmp_path)
    facts = source.describe()
    assert 130e6 < facts["params"] < 140e6  # SmolLM2-135M (tied embeddings: stored once)
    assert facts["task"] == "generation"
    assert not any(tmp_path.iterdir())  # nothing was converted just to list it


def test_models_command_lists_the_generative_models() -> None:
    from typer.testing import CliRunner

    from siliconlab.cli import app

    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["smollm2-chat"]["task"] == "generation"
    assert rows["gpt2"]["architecture_only"] and rows["t5-small"]["architecture_only"]


def test_t5_cannot_chat_and_refuses_a_causal_only_unit_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from siliconlab.cli import app

    result = CliRunner().invoke(app, ["chat", "--model", "t5-small", "--text", "hi", "--cache", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["bench", "t5-small", "--units", "openvino-cpu-fp32", "--quick",
                                      "--out", str(tmp_path), "--cache", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2
    assert "cannot run an encoder-decoder model" in result.output and "Traceback" not in result.output
