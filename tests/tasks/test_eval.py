"""eval's metrics on known confusion matrices, and its data readers' bad-input answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siliconlab.errors import UsageError
from siliconlab.tasks.eval import file_data, metrics


def test_metrics_match_a_hand_computed_confusion_matrix():
    truth = ["ham"] * 8 + ["spam"] * 4
    predicted = ["ham"] * 7 + ["spam"] + ["spam"] * 3 + ["ham"]
    result = metrics(truth, predicted, ["ham", "spam"])
    assert result["confusion"]["matrix"] == [[7, 1], [1, 3]]
    assert result["accuracy"] == pytest.approx(10 / 12)
    assert result["per_class"]["spam"]["precision"] == pytest.approx(3 / 4)
    assert result["per_class"]["spam"]["f1"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx((0.75 + 2 * 7 / 8 * 7 / 8 / (7 / 8 + 7 / 8)) / 2)


def test_unanswered_items_count_as_wrong():
    result = metrics(["a", "b"], ["a", None], ["a", "b"])
    assert result["accuracy"] == 0.5 and result["unanswered"] == 1


def test_file_data_reads_csv_and_jsonl_and_names_missing_fields(tmp_path: Path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("body,tag\nhello,spam\nhi there,ham\n")
    data = file_data(csv_path, "body", "tag", None)
    assert data.texts == ["hello", "hi there"] and data.labels == ["spam", "ham"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": "ham"}) for t in ("a", "b")) + "\n")
    assert file_data(jsonl, "text", "label", 1).texts == ["a"]
    with pytest.raises(UsageError, match="no field"):
        file_data(csv_path, "text", "label", None)
    with pytest.raises(UsageError, match="no such data file"):
        file_data(tmp_path / "missing.csv", "text", "label", None)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(UsageError, match="could not be read"):
        file_data(broken, "text", "label", None)


def test_a_unit_failing_its_gate_is_measured_marked_and_never_installed(
    tiny_head_classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """eval shows the real accuracy of a unit that fails parity, flags it, and leaves no artifact anyone could load."""
    from siliconlab.errors import SiliconlabError
    from siliconlab.tasks.eval import EvalData, evaluate
    from siliconlab.tasks.loader import load
    from siliconlab.units import registry
    from siliconlab.units.torch.cpu import TorchCpuFp32

    class Skewed(TorchCpuFp32):  # a real artifact computing another function: the classifier's bias moved
        name = "skewed-cpu-fp32"

        def convert(self, model, out_dir):
            import torch

            with torch.no_grad():
                model.model.classifier.bias.add_(torch.tensor([3.0, -3.0]))
            return super().convert(model, out_dir)

    monkeypatch.setitem(registry.REGISTRY, ("encoder", Skewed.name), Skewed)
    texts = [f"review {i}: {'a fine, moving film' if i % 2 else 'dull and tedious'}" for i in range(12)]
    data = EvalData(texts, ["positive" if i % 2 else "negative" for i in range(12)], "twelve texts")
    result = evaluate(str(tiny_head_classifier), ["skewed-cpu-fp32"], data, cache=tmp_path, threads=1)
    rows = {row["unit"]: row for row in result["results"]}
    assert rows["torch-cpu-fp32"]["gate"] == "passed" and not result["failures"]
    skewed = rows["skewed-cpu-fp32"]
    assert skewed["gate"] == "failed" and skewed["flagged"] and "parity failed" in skewed["gate_detail"]
    assert 0.0 <= skewed["accuracy"] <= 1.0 and skewed["texts"] == 12
    assert not (tmp_path / tiny_head_classifier.name / "skewed-cpu-fp32").exists()
    with pytest.raises(SiliconlabError, match="parity failed"):
        load(str(tiny_head_classifier), unit="skewed-cpu-fp32", cache=tmp_path)
