"""The Python API: load() -> a pipeline with its task's methods, answers per item, bad items reported."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import siliconlab
from siliconlab.errors import UsageError
from siliconlab.models.heads import MeanPoolClassifier
from siliconlab.tasks import load
from siliconlab.tasks.pipeline import BadInputWarning
from siliconlab.text import encode


@pytest.fixture(scope="module")
def classifier(tiny_head_classifier: Path, artifact_cache: Path):
    return load(str(tiny_head_classifier), unit="torch-cpu-fp32", cache=artifact_cache)


def test_load_is_reachable_from_the_package_without_importing_torch_first():
    assert callable(siliconlab.load)


def test_classifier_answers_with_its_own_labels_and_probabilities(classifier):
    answers = classifier.classify(["a gorgeous film", "a dull mess of a movie"])
    assert len(answers) == 2
    for answer in answers:
        assert answer["label"] in ("negative", "positive")
        assert set(answer["scores"]) == {"negative", "positive"}
        assert abs(sum(answer["scores"].values()) - 1.0) < 1e-6
        assert answer["score"] == max(answer["scores"].values())


def test_head_is_in_the_graph_on_every_unit_that_runs(tiny_head_classifier: Path, artifact_cache: Path):
    """The same logits from the exported ONNX graph as from PyTorch: the head travelled with the encoder."""
    import torch

    texts = ["one short text", "and a somewhat longer second text with more words in it"]
    reference = MeanPoolClassifier.from_pretrained(tiny_head_classifier)
    torch_pipe = load(str(tiny_head_classifier), unit="torch-cpu-fp32", cache=artifact_cache)
    ids, mask = encode(torch_pipe.loaded.tokenizer, texts, 128)
    with torch.inference_mode():
        expected = reference(torch.from_numpy(ids), torch.from_numpy(mask)).logits.numpy()
    ran = 0
    for unit in ("torch-cpu-fp32", "onnxruntime-cpu-fp32", "openvino-cpu-fp32"):
        try:
            pipe = load(str(tiny_head_classifier), unit=unit, cache=artifact_cache)
        except UsageError as exc:  # unit not installed here: say so, test the others
            print(f"skipped {unit}: {exc}")
            continue
        got = np.stack([[a["scores"]["negative"], a["scores"]["positive"]] for a in pipe.classify(texts)])
        probs = np.exp(expected) / np.exp(expected).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(got, probs, atol=1e-4)
        ran += 1
    assert ran >= 2, "at least torch and one converted unit must have run"


def test_a_method_the_task_lacks_says_which_to_call(classifier):
    with pytest.raises(UsageError, match=r"classification model.*classify\(\), not encode\(\)"):
        classifier.encode(["text"])
    with pytest.raises(UsageError, match="not reply"):
        classifier.reply("hello")


def test_one_bad_item_among_good_ones_is_reported_and_the_others_answered(classifier):
    texts = ["fine text", "", b"caf\xe9", "another fine one", 42]
    answers = classifier.classify(texts)
    assert [a["label"] is not None for a in answers] == [True, False, False, True, False]
    assert "text 1 is empty" in answers[1]["error"]
    assert "not valid UTF-8" in answers[2]["error"]
    assert "must be a string" in answers[4]["error"]


def test_a_single_bad_text_is_a_clear_error(classifier):
    with pytest.raises(UsageError, match="the text is empty"):
        classifier.classify("   ")
    with pytest.raises(UsageError, match="no text given"):
        classifier.classify([])


def test_long_text_is_truncated_with_a_notice_emoji_and_scripts_are_answered(classifier, caplog):
    long_text = "great " * 20000  # ~120 kB
    with caplog.at_level("WARNING", logger="siliconlab"):
        answers = classifier.classify([long_text, "🎬👍 東京 Zürich"])
    assert all(a["label"] for a in answers)
    assert "truncated" in caplog.text


def test_concurrent_callers_get_the_answers_a_single_caller_gets(classifier):
    texts = [f"review number {i} was {'good' if i % 2 else 'bad'}" for i in range(12)]
    expected = [a["label"] for a in classifier.classify(texts)]
    results: list[list[str]] = []

    def worker() -> None:
        results.append([a["label"] for a in classifier.classify(texts)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


def test_embedding_pipeline_returns_normalised_rows_and_nan_for_bad_items(tiny_bert: Path, artifact_cache: Path):
    pipe = load(str(tiny_bert), unit="torch-cpu-fp32", cache=artifact_cache)
    with pytest.warns(BadInputWarning, match="text 1 is empty"):
        vectors = pipe.encode(["first text", " ", "third text"])
    assert vectors.shape[0] == 3 and np.isnan(vectors[1]).all()
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-5)
    with pytest.raises(UsageError, match="embedding model.*not classify"):
        pipe.classify(["x"])


def test_unknown_unit_and_unit_that_cannot_run_here_are_usage_errors(tiny_bert: Path, artifact_cache: Path):
    with pytest.raises(UsageError, match="unknown unit"):
        load(str(tiny_bert), unit="warp-drive", cache=artifact_cache)
    with pytest.raises(UsageError, match="cannot run here"):
        load(str(tiny_bert), unit="tensorrt-fp16", cache=artifact_cache)


MIXED = ["ok", "a somewhat longer text about the weather and the trains today", "short one",
         "word " * 60, "another text of middling length here", "x"]  # fmt: skip


def test_cpu_units_cut_a_list_into_groups_within_their_token_budget(tiny_bert: Path, artifact_cache: Path):
    """On a CPU a list runs as length-sorted groups of <= tokens_per_call padded tokens (units/base.py), and the
    answers are the answers of each text alone (fp32: to rounding)."""
    pipe = load(str(tiny_bert), unit="onnxruntime-cpu-fp32", cache=artifact_cache)
    budget = pipe.loaded.runner.tokens_per_call
    assert budget is not None
    texts = MIXED * 8
    lengths = [len(ids) for ids in pipe.loaded.tokenizer(texts)["input_ids"]]
    groups = pipe._groups(np.array(lengths))
    assert sorted(i for g in groups for i in g) == list(range(len(texts))) and len(groups) > 1
    for group in groups:
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= budget
    together = pipe.encode(texts)
    alone = np.stack([pipe.encode([text])[0] for text in MIXED])
    np.testing.assert_allclose(together[: len(MIXED)], alone, atol=1e-5)


def test_dynamic_int8_answers_do_not_depend_on_their_batch_neighbours(tiny_bert: Path, artifact_cache: Path):
    """Dynamic int8 quantizes activations per tensor, so the unit runs each text alone: bit-identical answers."""
    pipe = load(str(tiny_bert), unit="onnxruntime-cpu-int8", cache=artifact_cache)
    assert pipe.loaded.runner.tokens_per_call == 1
    together = pipe.encode(MIXED)
    for index, text in enumerate(MIXED):
        assert np.array_equal(together[index], pipe.encode([text])[0])


def test_a_list_runs_side_by_side_with_answers_identical_to_one_call_at_a_time(tiny_bert: Path, artifact_cache: Path):
    """ONNX Runtime answers a list's independent calls on one single-threaded session per thread (units/onnxruntime/
    cpu.py run_many): the same bits as each call alone on the unit's own session, in the caller's order."""
    from siliconlab.text import tokenize

    pipe = load(str(tiny_bert), unit="onnxruntime-cpu-int8", cache=artifact_cache, threads=2)
    runner = pipe.loaded.runner
    rows = [tokenize(pipe.loaded.tokenizer, [text], pipe.loaded.max_length)[0][0] for text in MIXED]
    inputs = [(np.array([row], dtype=np.int64), np.ones((1, len(row)), dtype=np.int64)) for row in rows]
    together = runner.run_many(inputs)
    assert runner._side is not None  # the side-by-side sessions were used, not the one-at-a-time fallback
    for (ids, mask), out in zip(inputs, together):
        alone = runner.run(ids, mask)
        assert all(np.array_equal(out[name], alone[name]) for name in alone)


def test_load_shows_no_library_progress_bars_and_leaves_their_setting_alone(tiny_bert: Path, tmp_path: Path, capfd):
    """transformers' "Loading weights" bars are off while load() reads the model, and on again after."""
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    pipe = load(str(tiny_bert), unit="torch-cpu-fp32", cache=tmp_path)
    pipe.encode(["text"])
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_a_unit_that_cannot_serve_is_warned_about_once_per_process(tiny_bert: Path, artifact_cache: Path, caplog,
                                                                    monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    from siliconlab.errors import SiliconlabError
    from siliconlab.tasks import loader
    from siliconlab.units import get_unit

    real = loader._load_on

    def refuse_int8(source, unit, cache, threads, why):
        if unit.name == "onnxruntime-cpu-int8":
            raise SiliconlabError("parity failed: labels agree with fp32 on 98.3% of 300 texts")
        return real(source, unit, cache, threads, why)

    monkeypatch.setattr(loader, "_load_on", refuse_int8)
    monkeypatch.setattr(loader, "_WARNED", set())
    monkeypatch.setattr(loader, "_candidates", lambda *_: ([get_unit("onnxruntime-cpu-int8"),
                                                            get_unit("torch-cpu-fp32")], "test order"))  # fmt: skip
    with caplog.at_level("WARNING", logger="siliconlab"):
        for _ in range(3):
            assert load(str(tiny_bert), cache=artifact_cache).unit == "torch-cpu-fp32"
    assert caplog.text.count("could not serve") == 1
