"""A tiny encoder + mean-pool head on disk: a classifier every unit can convert in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_head_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from siliconlab.models.heads import MeanPoolClassifier
    from siliconlab.models.minilm import tokenizer_directory

    path = tmp_path_factory.mktemp("tiny-head")
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(5)
    weight, bias = torch.randn(2, 32) * 4, torch.tensor([0.1, -0.1])
    MeanPoolClassifier(BertModel(config).eval(), ["negative", "positive"], weight, bias).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer_directory()).save_pretrained(path)
    return path
