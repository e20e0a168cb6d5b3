"""Typed workloads: labels, the JSON they write to results (schema siliconlab.bench/5), inputs they build."""

from __future__ import annotations

import json

import pytest

from siliconlab.bench.workloads import (
    BudgetSearch,
    FixedShape,
    TextStream,
    budget_search,
    fixed_grid,
    text_batches,
    text_stream,
    workload_from_json,
)
from siliconlab.errors import UsageError
from siliconlab.models import resolve


def test_labels_name_each_kind():
    assert FixedShape(batch=8, seq=128).label == "B8 S128"
    assert TextStream(batch=4, texts=("a", "b")).label == "text B4"
    assert BudgetSearch(seq=64, budget_ms=50.0).label == "budget 50 ms S64"
    assert BudgetSearch(seq=64, budget_ms=12.5).label == "budget 12.5 ms S64"


def test_settings_keep_the_result_schema():
    """The exact dicts (keys, order, values) the result file recorded when workloads were plain dicts."""
    fixed = fixed_grid([1, 2], [8], 128)
    assert [json.dumps(w.settings()) for w in fixed] == [
        '{"kind": "fixed", "batch": 1, "seq": 8}',
        '{"kind": "fixed", "batch": 2, "seq": 8}',
    ]
    [text] = text_stream(["one text", "another"], [2])
    assert json.dumps(text.settings()) == '{"kind": "text", "batch": 2, "texts": 2}'
    [budget] = budget_search([8], 5.0, 128)
    assert json.dumps(budget.settings()) == '{"kind": "budget", "seq": 8, "budget_ms": 5.0, "max_batch": 256}'


def test_json_round_trip_to_the_worker():
    workloads = [FixedShape(batch=2, seq=16), TextStream(batch=1, texts=("x", "y z")), BudgetSearch(8, 3.0, 4)]
    for workload in workloads:
        assert workload_from_json(json.loads(json.dumps(workload.to_json()))) == workload
    assert TextStream(batch=1, texts=("x", "y z")).to_json()["texts"] == ["x", "y z"]  # the worker gets the texts


def test_only_the_budget_search_times_alone():
    assert BudgetSearch(8, 3.0).times_alone and not FixedShape(1, 8).times_alone
    assert not TextStream(1, ("x",)).times_alone


def test_text_batches_pad_only_to_their_own_longest():
    tokenizer = resolve("minilm").load().tokenizer
    texts = ["short one", "a much longer sentence with many more words in it", "tiny", "also short"]
    batches = text_batches(tokenizer, texts, 2, 512)
    assert len(batches) == 2
    for ids, mask in batches:
        assert ids.shape[1] == mask.sum(axis=1).max()
    assert TextStream(batch=2, texts=tuple(texts)).inputs(tokenizer, 512)[1][0].shape == batches[1][0].shape


def test_fixed_inputs_have_the_asked_shape():
    tokenizer = resolve("minilm").load().tokenizer
    [(ids, mask)] = FixedShape(batch=3, seq=16).inputs(tokenizer, 512)
    assert ids.shape == mask.shape == (3, 16)
    [(ids, _)] = BudgetSearch(seq=16, budget_ms=1.0).inputs_at(tokenizer, 4)
    assert ids.shape == (4, 16)


def test_bad_workloads_are_usage_errors():
    with pytest.raises(UsageError, match="maximum of 128"):
        fixed_grid([1], [16, 256], 128)
    with pytest.raises(UsageError, match="at least one text"):
        text_stream([], [1])
    with pytest.raises(UsageError, match="must be positive"):
        budget_search([8], 0.0, 128)
