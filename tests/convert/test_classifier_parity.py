"""Parity for classifiers is about labels: fp32 agrees on every text, int8 on >= 99 % with a small mean shift."""

from __future__ import annotations

import pytest

from siliconlab.convert.parity import labels_close


@pytest.mark.parametrize(
    "threshold,agreement,mean,peak,ok",
    [
        (0.99999, 1.0, 1e-6, 5e-4, True),  # fp32, identical labels
        (0.99999, 0.9967, 1e-6, 5e-4, False),  # fp32 with one label flipped in 300: a bug
        (0.99999, 1.0, 1e-4, 2e-3, False),  # fp32 whose probabilities drift
        (0.99, 0.993, 0.004, 0.23, True),  # int8: one near-tie moved a lot, the rest did not
        (0.99, 0.98, 0.004, 0.05, False),  # int8 below 99 % agreement
        (0.99, 1.0, 0.08, 0.20, False),  # int8 agreeing by luck while every probability moved
    ],
)
def test_classifier_gate(threshold: float, agreement: float, mean: float, peak: float, ok: bool):
    assert labels_close(threshold, agreement, mean, peak) is ok
