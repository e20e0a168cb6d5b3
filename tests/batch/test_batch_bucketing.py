"""The batch plan: within budget, ascending length, every row exactly once, deterministic."""

from __future__ import annotations

import random

import pytest

from siliconlab.tasks.bucketing import arrival_batches, padded_tokens, plan_batches


def test_plan_keeps_every_row_once_within_budget() -> None:
    rng = random.Random(4)
    lengths = [rng.randint(3, 300) for _ in range(1000)]
    batches = plan_batches(lengths, 2048)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 2048
    assert [lengths[i] for i in flat] == sorted(lengths)  # ascending: neighbours have similar lengths
    assert plan_batches(lengths, 2048) == batches


def test_bucketing_pads_less_than_arrival_order() -> None:
    rng = random.Random(5)
    lengths = [rng.choice([12, 20, 30, 250, 400]) for _ in range(512)]
    assert padded_tokens(lengths, plan_batches(lengths, 4096)) < 0.5 * padded_tokens(
        lengths, arrival_batches(lengths, 32)
    )


def test_a_row_longer_than_the_budget_runs_alone() -> None:
    assert plan_batches([5, 600, 6], 100) == [[0, 2], [1]]


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_batches([1], 0)
    with pytest.raises(ValueError):
        arrival_batches([1], 0)
