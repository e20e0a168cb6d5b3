from pathlib import Path

import pytest

from siliconlab.errors import UsageError
from siliconlab.models import BUILTIN, resolve


def test_builtin_models_resolve_and_describe():
    minilm = resolve("minilm").describe()
    assert minilm["task"] == "embedding"
    assert 22e6 < minilm["params"] < 23.5e6
    bert = resolve("bert-base").describe()
    assert 105e6 < bert["params"] < 115e6
    assert resolve("bert-base").architecture_only
    assert set(BUILTIN) >= {"minilm", "bert-base"}


def test_unknown_model_names_the_choices():
    with pytest.raises(UsageError, match="minilm, bert-base"):
        resolve("no-such-model")


def test_local_directory_embedding_and_classifier(tiny_bert: Path, tiny_classifier: Path):
    embed = resolve(str(tiny_bert))
    assert embed.describe()["task"] == "embedding"
    loaded = embed.load()
    assert loaded.output_names == ("token_states", "sentence_embedding")
    classifier = resolve(str(tiny_classifier)).load()
    assert classifier.task == "classification"
    assert classifier.output_names == ("logits",)


def test_content_hash_is_stable_and_tracks_weights(tiny_bert: Path, tmp_path: Path):
    import shutil

    first = resolve(str(tiny_bert)).content_hash()
    assert first == resolve(str(tiny_bert)).content_hash()
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert resolve(str(copy)).content_hash() != first


def test_bert_base_weights_are_seeded():
    import torch

    a = resolve("bert-base").load().model
    b = resolve("bert-base").load().model
    assert torch.equal(a.encoder.layer[0].attention.self.query.weight, b.encoder.layer[0].attention.self.query.weight)


def test_pickle_only_directory_is_refused(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UsageError, match="pickle"):
        resolve(str(tmp_path))


def test_directory_without_config_is_refused(tmp_path: Path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match="config.json"):
        resolve(str(tmp_path))
