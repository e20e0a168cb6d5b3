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


def test_train_head_writes_outside_the_package_by_default_and_compares(tmp_path: Path, monkeypatch):
    """`siliconlab train-head spam` as the README shows it leaves the committed head alone and says how its own
    differs (a rebuild on another CPU differs in the last bits)."""
    from safetensors.numpy import load_file, save_file
    from typer.testing import CliRunner

    import siliconlab.tasks.train as train_module
    from siliconlab.cli import app
    from siliconlab.models.task_models import head_paths

    committed, _ = head_paths("spam")
    before = committed.read_bytes()

    def fake_train(task: str, out_dir: Path, **_: object) -> dict:
        tensors = load_file(str(committed))
        tensors["bias"] = tensors["bias"] + np.float32(1.5e-4)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out_dir / f"{task}.safetensors"))
        return {"task": task, "train_rows": 1, "l2": 0.0, "train_accuracy": 1.0, "embedding_unit": "x",
                "embed_seconds": 0.0}  # fmt: skip

    monkeypatch.setattr(train_module, "train_head", fake_train)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train-head", "spam"])
    assert result.exit_code == 0, result.output
    assert committed.read_bytes() == before and (tmp_path / "heads" / "spam.safetensors").is_file()
    flat = " ".join(result.output.split())
    assert "head: heads/spam.safetensors" in flat and "by at most 0.00015" in flat and "not across CPUs" in flat
