"""Shared fixtures: tiny random BERTs on disk (real tokenizer, small shapes) and a session artifact cache.

The tokenizer comes from tokenizer_directory(): the minilm package where installed, else its bundled copy, so the
fixtures also work on a GPU machine without that package.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siliconlab.models.minilm import tokenizer_directory


def _save_tiny(path: Path, classification: bool) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    config = BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        num_labels=3,
    )
    torch.manual_seed(3)
    model = BertForSequenceClassification(config) if classification else BertModel(config)
    model.eval().save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(tokenizer_directory()).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), classification=False)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-classifier"), classification=True)


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per test session so a model is converted once and reused across tests."""
    return tmp_path_factory.mktemp("artifacts")
