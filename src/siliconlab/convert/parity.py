"""Parity: does an artifact compute the same function as the fresh fp32 PyTorch model?

Each fixed real sentence is run alone and inside one right-padded batch; both are compared with the
reference on the valid tokens (per-token cosine) and on the pooled output (sentence embedding or logits).
`cosine_min` is the worst pooled cosine over all sentences and both runs: the number the gate checks.

Classifiers are also judged on what a user sees: the label. A few hundred more real texts (never from a
held-out split or the calibration set) must get the reference's label — every one for an fp32 unit, at
least 99 % for a reduced-precision one — and the class probabilities may differ by at most a bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from siliconlab.errors import UsageError
from siliconlab.models.base import LoadedModel
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.progress import advance, expect
from siliconlab.text import encode
from siliconlab.units.base import Runner

#: Classifier gates. fp32 units: every label the same and no class probability more than 1e-3 away. Reduced
#: precision (int8, fp16): >= 99 % of labels the same and the *mean* class-probability difference <= 0.03 —
#: a text near the decision boundary can move by more (its label may even flip: that is what the 1 % allows),
#: so the maximum is reported, not gated; a broken artifact moves the mean.
FP32_AGREEMENT, FP32_PROB_DIFF = 1.0, 1e-3
REDUCED_AGREEMENT, REDUCED_PROB_DIFF_MEAN = 0.99, 0.03
AGREEMENT_TEXTS = 300


@dataclass
class ParityReport:
    cosine_min: float
    cosine_median: float
    token_cosine_min: float | None
    max_abs: float
    threshold: float
    passed: bool
    sentences: int
    worst_sentence: int
    #: Classifiers only: share of agreement texts with the reference's label, and the largest probability gap.
    label_agreement: float | None = None
    prob_diff_max: float | None = None
    prob_diff_mean: float | None = None
    agreement_texts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line of figures. A classifier is judged by its labels (two logits' cosine says little: a text on
        the decision boundary reads -1.0 when its label flips), so those come first and name their bounds."""
        token = f", token cosine min {self.token_cosine_min:.6f}" if self.token_cosine_min is not None else ""
        if self.label_agreement is not None:
            exact = self.threshold >= 0.99999
            needs = "every one" if exact else f">= {REDUCED_AGREEMENT:.0%}"
            bound = f"max <= {FP32_PROB_DIFF:g}" if exact else f"mean <= {REDUCED_PROB_DIFF_MEAN:g}"
            gated = f" (needs >= {self.threshold})" if exact else " (not gated)"
            return (
                f"labels agree with fp32 on {self.label_agreement:.1%} of {self.agreement_texts} texts (needs "
                f"{needs}), class probability diff mean {self.prob_diff_mean:.2g} max {self.prob_diff_max:.2g} "
                f"(needs {bound}); logits cosine min {self.cosine_min:.6f}{gated}"
            )
        return (
            f"pooled cosine min {self.cosine_min:.6f} (needs >= {self.threshold}){token}, "
            f"max abs error {self.max_abs:.3g}, worst sentence #{self.worst_sentence}"
        )


@dataclass
class Reference:
    texts: list[str]
    single: list[dict[str, np.ndarray]]
    #: Classifiers: more real texts and the reference's logits for them (label agreement).
    agreement_texts: list[str] | None = None
    agreement_logits: np.ndarray | None = None


def _pooled_name(names: tuple[str, ...]) -> str:
    return names[-1]  # sentence_embedding or logits


#: Above this share of [UNK] among the parity sentences' word tokens, the tokenizer does not fit the model.
MAX_UNKNOWN_SHARE = 0.5


def unknown_token_share(tokenizer: Any, texts: list[str]) -> float:
    """The share of unknown-token ids among the texts' tokens (special tokens excluded); 0 without an unk token."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return 0.0
    ids = [i for row in tokenizer(list(texts), add_special_tokens=False)["input_ids"] for i in row]
    return sum(i == unk for i in ids) / max(len(ids), 1)


def reference_outputs(model: LoadedModel, texts: list[str]) -> Reference:
    """fp32 PyTorch outputs per sentence, unpadded, from a model that no exporter has touched.

    Refuses a tokenizer that turns the sentences into mostly unknown tokens: parity on [UNK] [UNK] ... would
    pass for any artifact and prove nothing (a model folder without its tokenizer files gets such a one).
    """
    share = unknown_token_share(model.tokenizer, texts)
    if share > MAX_UNKNOWN_SHARE:
        raise UsageError(
            f"the tokenizer of {model.name} maps {share:.0%} of the parity sentences' tokens to "
            f"'{model.tokenizer.unk_token}': it does not fit the model (are the model's tokenizer files missing?)"
        )
    module = EncoderWithHead(model.model, model.task).eval()
    expect(len(texts) + (AGREEMENT_TEXTS if model.head.classifier else 0))
    outputs = []
    with torch.inference_mode():
        for text in texts:
            ids, mask = encode(model.tokenizer, [text], model.max_length, warn=False)
            result = module(torch.from_numpy(ids), torch.from_numpy(mask))
            outputs.append({name: t.numpy()[0] for name, t in zip(model.output_names, result)})
            advance()
    reference = Reference(texts=list(texts), single=outputs)
    if model.head.classifier:
        from siliconlab.data import agreement_texts
        from siliconlab.models.reference import TorchRunner

        reference.agreement_texts = agreement_texts(AGREEMENT_TEXTS)
        reference.agreement_logits = batched_logits(TorchRunner(module), model, reference.agreement_texts)
    return reference


def batched_logits(runner: Runner, model: LoadedModel, texts: list[str], batch: int = 32) -> np.ndarray:
    """Logits for many texts, in batches of similar length (so padding stays small), in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rows: dict[int, np.ndarray] = {}
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        ids, mask = encode(model.tokenizer, [texts[i] for i in chunk], model.max_length, warn=False)
        rows.update(zip(chunk, np.asarray(runner.run(ids, mask)["logits"], dtype=np.float64)))
        advance(len(chunk))
    return np.stack([rows[i] for i in range(len(texts))])


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def labels_close(threshold: float, agreement: float, diff_mean: float, diff_max: float) -> bool:
    """The classifier gate: fp32 units (threshold >= 0.99999) agree on every label within 1e-3 probability;
    reduced-precision units on >= 99 % of labels with a mean probability difference <= 0.03."""
    if threshold >= 0.99999:
        return agreement >= FP32_AGREEMENT and diff_max <= FP32_PROB_DIFF
    return agreement >= REDUCED_AGREEMENT and diff_mean <= REDUCED_PROB_DIFF_MEAN


def label_parity(runner: Runner, model: LoadedModel, reference: Reference) -> tuple[float, float, float]:
    """(share of texts whose label matches the reference, mean and max class-probability difference)."""
    # Judged as served: a runner that answers each text alone (dynamic int8: its activation scale would otherwise
    # follow the padded batch) is judged one text at a time.
    alone = getattr(runner, "tokens_per_call", None) == 1
    got = batched_logits(runner, model, reference.agreement_texts or [], batch=1 if alone else 32)
    expected = reference.agreement_logits
    assert got is not None and expected is not None  # a classifier reference carries its agreement logits
    agreement = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())
    diff = np.abs(_softmax(got) - _softmax(expected)).max(axis=1)
    return agreement, float(diff.mean()), float(diff.max())


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64).reshape(-1, a.shape[-1]) if a.ndim > 1 else a.astype(np.float64)[None]
    b = b.astype(np.float64).reshape(-1, b.shape[-1]) if b.ndim > 1 else b.astype(np.float64)[None]
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(denom, 1e-30)


def check_parity(runner: Runner, model: LoadedModel, reference: Reference, threshold: float) -> ParityReport:
    names = model.output_names
    pooled = _pooled_name(names)
    pooled_cos: list[tuple[float, int]] = []
    token_min: float | None = None
    max_abs = 0.0
    expect(2 * len(reference.texts) + len(reference.agreement_texts or []))

    def compare(index: int, got: dict[str, np.ndarray], valid: int) -> None:
        nonlocal token_min, max_abs
        ref = reference.single[index]
        for name in names:
            value = np.asarray(got[name], dtype=np.float32)
            expected = ref[name]
            if name == "token_states":
                value = value[:valid]
                cos = float(_cosine_rows(value, expected).min())
                token_min = cos if token_min is None else min(token_min, cos)
            if value.shape != expected.shape:
                raise ValueError(f"output '{name}' has shape {value.shape}, expected {expected.shape}")
            max_abs = max(max_abs, float(np.max(np.abs(value - expected))))
        pooled_cos.append((float(_cosine_rows(np.asarray(got[pooled]), ref[pooled])[0]), index))

    for index, text in enumerate(reference.texts):
        ids, mask = encode(model.tokenizer, [text], model.max_length, warn=False)
        got = runner.run(ids, mask)
        compare(index, {name: got[name][0] for name in names}, int(mask.sum()))
        advance()
    ids, mask = encode(model.tokenizer, reference.texts, model.max_length, warn=False)
    got = runner.run(ids, mask)
    advance(len(reference.texts))
    for index in range(len(reference.texts)):
        compare(index, {name: got[name][index] for name in names}, int(mask[index].sum()))

    worst_cos, worst_index = min(pooled_cos)
    report = ParityReport(
        cosine_min=worst_cos,
        cosine_median=float(np.median([c for c, _ in pooled_cos])),
        token_cosine_min=token_min,
        max_abs=max_abs,
        threshold=threshold,
        passed=bool(worst_cos >= threshold),
        sentences=len(reference.texts),
        worst_sentence=worst_index,
    )
    if reference.agreement_texts:
        agreement, diff_mean, diff_max = label_parity(runner, model, reference)
        report.label_agreement, report.prob_diff_mean, report.prob_diff_max = agreement, diff_mean, diff_max
        report.agreement_texts = len(reference.agreement_texts)
        labels_pass = labels_close(threshold, agreement, diff_mean, diff_max)
        # fp32: the logits must match too; reduced precision: the labels and probabilities are the gate.
        report.passed = labels_pass and (report.passed or threshold < 0.99999)
    return report
