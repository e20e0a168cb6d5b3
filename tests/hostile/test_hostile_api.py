"""The Python API under hostile use (issue 24, items 9 and 11): what is not a text or a list of texts is refused
in one line, and a list with bad items (a lone surrogate among them) answers the good ones and names the bad
ones, as docs/reliability.md promises."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siliconlab.errors import UsageError
from siliconlab.tasks import load
from siliconlab.tasks.pipeline import BadInputWarning

UNIT = "torch-cpu-fp32"


@pytest.fixture(scope="module")
def classifier(tiny_classifier: Path, artifact_cache: Path):  # noqa: ANN201 - a ClassifierPipeline
    return load(str(tiny_classifier), unit=UNIT, cache=artifact_cache)


@pytest.fixture(scope="module")
def embedder(tiny_bert: Path, artifact_cache: Path):  # noqa: ANN201 - an EmbeddingPipeline
    return load(str(tiny_bert), unit=UNIT, cache=artifact_cache)


NOT_A_LIST = [
    {"a review": 1, "another": 2},
    {"one text", "another"},
    (t for t in ["a generator"]),
    42,
    None,
    np.array([["a", "b"], ["c", "d"]]),
]


@pytest.mark.parametrize("value", NOT_A_LIST, ids=["dict", "set", "generator", "int", "None", "2-D array"])
def test_what_is_not_a_text_or_a_list_of_texts_is_a_usage_error(classifier, embedder, value: object) -> None:
    for call in (classifier.classify, embedder.encode):
        with pytest.raises(UsageError, match="expected a text or a list of texts, got"):
            call(value)


def test_list_likes_are_answered_in_order(classifier) -> None:
    texts = ["a gorgeous film", "a dull mess"]
    expected = classifier.classify(texts)
    for same in (tuple(texts), np.array(texts), pd.Series(texts)):
        assert classifier.classify(same) == expected


def test_a_lone_surrogate_among_good_items_is_named_and_the_rest_answered(classifier, embedder) -> None:
    texts = ["a fine text", "\ud800", "caf\udce9", ["nested"], None, "another fine one"]
    answers = classifier.classify(texts)
    assert [a["label"] is not None for a in answers] == [True, False, False, False, False, True]
    assert "text 1 is not valid UTF-8 (lone surrogate U+D800 at offset 0)" in answers[1]["error"]
    assert "byte 0xe9" in answers[2]["error"]
    assert "must be a string, got list" in answers[3]["error"] and "got NoneType" in answers[4]["error"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = embedder.encode(texts)
    assert np.isfinite(rows[[0, 5]]).all() and np.isnan(rows[[1, 2, 3, 4]]).all()
    message = " ".join(str(w.message) for w in caught if issubclass(w.category, BadInputWarning))
    assert "4 text(s) not answered" in message and "lone surrogate U+D800" in message


def test_a_single_lone_surrogate_is_one_line(classifier) -> None:
    with pytest.raises(UsageError, match=r"^the text is not valid UTF-8 \(lone surrogate U\+D800 at offset 3\)$"):
        classifier.classify("abc\ud800")
