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


class _Shifted:
    """A classifier runner whose logits all move by the same constant: the same probabilities and labels, a
    different logits vector (its cosine with the reference's falls far below 0.99)."""

    def __init__(self, inner, shift: float):
        self.inner, self.shift, self.output_names = inner, shift, inner.output_names

    def run(self, input_ids, attention_mask):
        out = self.inner.run(input_ids, attention_mask)
        return {name: value + self.shift if name == "logits" else value for name, value in out.items()}


def test_a_reduced_precision_classifier_is_judged_by_its_labels(tiny_classifier):
    """Two or three logits' cosine is no measure of the answer: the gate and the one-line summary speak of labels."""
    from siliconlab.convert.parity import check_parity, reference_outputs
    from siliconlab.data import parity_texts
    from siliconlab.models import resolve
    from siliconlab.models.reference import TorchRunner
    from siliconlab.models.wrapper import EncoderWithHead

    model = resolve(str(tiny_classifier)).load()
    reference = reference_outputs(model, parity_texts())
    runner = _Shifted(TorchRunner(EncoderWithHead(model.model, model.task), output_names=model.output_names), 30.0)
    reduced = check_parity(runner, model, reference, threshold=0.99)
    assert reduced.cosine_min < 0.99 and reduced.label_agreement == 1.0 and reduced.passed
    assert reduced.summary().startswith("labels agree with fp32 on 100.0% of 300 texts (needs >= 99%)")
    assert "(not gated)" in reduced.summary() and "pooled" not in reduced.summary()
    exact = check_parity(runner, model, reference, threshold=0.99999)
    assert not exact.passed and "(needs every one)" in exact.summary() and "needs >= 0.99999" in exact.summary()
