"""sentence-transformers users' code runs unchanged on `siliconlab.load("minilm")` and gives the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from siliconlab.errors import UsageError
from siliconlab.tasks import load
from siliconlab.tasks.pipeline import BadInputWarning

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def quickstart(model):  # noqa: ANN001, ANN201 - the sentence-transformers documentation's quickstart, verbatim
    sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    embeddings = model.encode(sentences)
    print(embeddings.shape)
    similarities = model.similarity(embeddings, embeddings)
    print(similarities)
    return embeddings, similarities


@pytest.fixture(scope="module")
def reference():
    st = pytest.importorskip("sentence_transformers")
    from siliconlab.models.minilm import minilm_directory

    return st.SentenceTransformer(str(minilm_directory()), device="cpu")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("unit", ["torch-cpu-fp32", "onnxruntime-cpu-fp32"])
def test_the_quickstart_runs_unchanged_and_matches_sentence_transformers(reference, artifact_cache: Path, unit: str):
    ours = load("minilm", unit=unit, cache=artifact_cache)
    got, got_sim = quickstart(ours)
    want, want_sim = quickstart(reference)
    assert isinstance(got, np.ndarray) and got.shape == want.shape == (3, 384)
    assert isinstance(got_sim, torch.Tensor) and got_sim.shape == (3, 3)
    assert _cosines(got, want).min() >= 0.9999
    np.testing.assert_allclose(got_sim.numpy(), want_sim.numpy(), atol=1e-4)
    # The keyword arguments sentence-transformers users pass, with its meanings.
    for kwargs in (
        {"batch_size": 1, "show_progress_bar": False},
        {"normalize_embeddings": True, "convert_to_numpy": True},
        {"normalize_embeddings": False},  # all-MiniLM-L6-v2's own pipeline normalises: unit rows either way
        {"truncate_dim": 128, "normalize_embeddings": True},
    ):
        assert _cosines(ours.encode(SENTENCES, **kwargs), reference.encode(SENTENCES, **kwargs)).min() >= 0.9999
    tensor = ours.encode(SENTENCES, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == (3, 384)
    pairs = ours.similarity_pairwise(tensor, tensor.flip(0))
    np.testing.assert_allclose(pairs.numpy(), reference.similarity_pairwise(tensor, tensor.flip(0)).numpy(), atol=1e-6)
    one = ours.encode(SENTENCES[0])
    assert one.shape == reference.encode(SENTENCES[0]).shape == (384,)
    tokens = ours.encode(SENTENCES, output_value="token_embeddings")
    expected = reference.encode(SENTENCES, output_value="token_embeddings")
    for got_rows, want_rows in zip(tokens, expected):
        assert got_rows.shape == tuple(want_rows.shape)
        assert _cosines(np.asarray(got_rows), want_rows.numpy()).min() >= 0.9999
    assert ours.get_sentence_embedding_dimension() == ours.get_embedding_dimension() == 384
    assert reference.get_embedding_dimension() == 384


def test_encode_output_forms_and_batch_size(tiny_bert: Path, artifact_cache: Path, capsys):
    pipe = load(str(tiny_bert), unit="onnxruntime-cpu-fp32", cache=artifact_cache)
    texts = [f"text number {i} " + "word " * i for i in range(10)]
    default = pipe.encode(texts)
    small = pipe.encode(texts, batch_size=3, show_progress_bar=True)
    np.testing.assert_allclose(small, default, atol=1e-5)
    assert "Batches" in capsys.readouterr().err
    listed = pipe.encode(texts, convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == 10 and all(isinstance(t, torch.Tensor) for t in listed)
    single = pipe.encode("one text", convert_to_tensor=True)
    assert isinstance(single, torch.Tensor) and single.ndim == 1
    cut = pipe.encode(texts, truncate_dim=16)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)
    assert pipe.encode_query(texts).shape == pipe.encode_document(texts).shape == default.shape


def test_a_bad_item_keeps_its_nan_row_in_every_form(tiny_bert: Path, artifact_cache: Path):
    pipe = load(str(tiny_bert), unit="torch-cpu-fp32", cache=artifact_cache)
    with pytest.warns(BadInputWarning, match="text 1 is empty"):
        rows = pipe.encode(["fine", " ", "also fine"], output_value="token_embeddings")
    assert rows[1].shape[0] == 0 and rows[0].shape[0] > 0
    with pytest.warns(BadInputWarning):
        tensor = pipe.encode(["fine", ""], convert_to_tensor=True)
    assert torch.isnan(tensor[1]).all() and not torch.isnan(tensor[0]).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"precision": "binary"}, "precision 'binary' is not supported"),
        ({"device": "cuda"}, "unit="),
        ({"output_value": "logits"}, "output_value must be one of"),
        ({"prompt_name": "query"}, "no named prompts"),
        ({"truncate_dim": -1}, "truncate_dim must be a positive integer"),
    ],
)
def test_options_we_cannot_honour_are_one_line_errors(tiny_bert: Path, artifact_cache: Path, kwargs, message):
    pipe = load(str(tiny_bert), unit="torch-cpu-fp32", cache=artifact_cache)
    with pytest.raises(UsageError, match=message):
        pipe.encode(["text"], **kwargs)


def test_similarity_takes_arrays_tensors_and_lists(tiny_bert: Path, artifact_cache: Path):
    pipe = load(str(tiny_bert), unit="torch-cpu-fp32", cache=artifact_cache)
    vectors = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    expected = np.array([[1.0, 0.6], [0.6, 1.0]])
    for form in (vectors, torch.from_numpy(vectors), list(vectors), [torch.from_numpy(v) for v in vectors]):
        np.testing.assert_allclose(pipe.similarity(form, form).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(pipe.similarity(vectors[0], vectors).numpy(), expected[:1], atol=1e-6)
    np.testing.assert_allclose(pipe.similarity_pairwise(vectors, vectors).numpy(), [1.0, 1.0], atol=1e-6)
    with pytest.raises(UsageError, match="equal shapes"):
        pipe.similarity_pairwise(vectors, vectors[:1])
