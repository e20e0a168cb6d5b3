"""A tiny random BERT (hidden 32, 2 layers) with MiniLM's bundled tokenizer files: converts in seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from siliconlab.models.minilm import TOKENIZER_ASSETS


def save_tiny_model(path: Path) -> Path:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(5)
    BertModel(config).eval().save_pretrained(path, safe_serialization=True)
    for name in TOKENIZER_ASSETS.iterdir():
        shutil.copy(name, path / name.name)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="session")
def converted(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output root holding one good onnxruntime-cpu-fp32 artifact; tests copy it before changing it."""
    from siliconlab.convert import Converter
    from siliconlab.models import resolve
    from siliconlab.units import get_unit

    out = tmp_path_factory.mktemp("out")
    outcome = Converter(resolve(str(tiny_model)), out, threads=1).convert_unit(get_unit("onnxruntime-cpu-fp32"))
    assert outcome.status == "converted", outcome.error
    return out
