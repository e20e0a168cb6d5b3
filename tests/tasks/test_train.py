"""train-head: deterministic (same data, same bytes) and the committed heads are as accurate as claimed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.data.tasks import labelled, split
from siliconlab.tasks.train import accuracy, fit_logistic, train_head


def test_split_is_by_content_and_never_overlaps():
    for task in ("sentiment", "spam"):
        frame = labelled(task)
        train, test = set(frame[frame.split == "train"].text), set(frame[frame.split == "test"].text)
        assert train and test and not train & test
        assert 0.15 < len(test) / len(frame) < 0.25
        assert split(task, "test", limit=50)["label"].nunique() == frame["label"].nunique()


def test_logistic_fit_separates_separable_data_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    first, second = fit_logistic(x, y, 2, 1e-4), fit_logistic(x, y, 2, 1e-4)
    assert accuracy(*first, x, y) > 0.97
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.slow
def test_retraining_on_a_fixed_subset_gives_identical_heads(tmp_path: Path, artifact_cache: Path, monkeypatch):
    monkeypatch.setenv("SILICONLAB_CACHE", str(artifact_cache))
    records = [
        train_head("spam", tmp_path / name, rows=40, unit="torch-cpu-fp32", reuse_features=reuse)
        for name, reuse in (("a", False), ("b", False), ("c", True))  # c: from the features a and b cached
    ]
    heads = [(tmp_path / name / "spam.safetensors").read_bytes() for name in ("a", "b", "c")]
    assert heads[0] == heads[1] == heads[2]
    assert records[0]["train_digest"] == records[1]["train_digest"]
    assert records[0]["test_digest"] not in (records[0]["train_digest"],)


@pytest.mark.slow
@pytest.mark.parametrize("task,floor", [("sentiment", 0.75), ("spam", 0.95)])
def test_committed_head_is_accurate_on_a_fixed_test_slice(task: str, floor: float, artifact_cache: Path):
    """A sanity floor on 120 held-out texts (the full figures come from `siliconlab eval`, never from here)."""
    from siliconlab.tasks import load

    data = split(task, "test", limit=120)
    pipeline = load(task, unit="torch-cpu-fp32", cache=artifact_cache)
    predicted = [a["label"] for a in pipeline.classify(data["text"].tolist())]
    assert float(np.mean(np.array(predicted) == data["label"].to_numpy())) >= floor
