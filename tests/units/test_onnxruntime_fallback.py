"""The int8 classifier's fp32 re-check of near-ties (units/onnxruntime/fallback.py): the margin comes from the
calibration texts, a text whose int8 margin is under it gets the fp32 graph's answer, every other text int8's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert.pipeline import Converter
from siliconlab.models import resolve
from siliconlab.text import encode
from siliconlab.units.onnxruntime.cpu import ARTIFACT, OrtRunner
from siliconlab.units.onnxruntime.cpu_int8 import OnnxRuntimeCpuInt8
from siliconlab.units.onnxruntime.fallback import (
    FALLBACK,
    FALLBACK_MARGIN,
    FallbackRunner,
    choose_margin,
    logit_move,
    top_margin,
)


def test_the_margin_is_the_worst_logit_difference_move_with_room():
    quantized = np.array([[1.0, 0.0, -1.0], [0.0, 0.2, 0.1]])
    reference = np.array([[0.9, 0.1, -1.0], [0.0, 0.5, 0.1]])
    # Moves: row 0 changed logits by +0.1, -0.1, 0 -> a difference moved by 0.2; row 1 by 0, -0.3, 0 -> 0.3.
    np.testing.assert_allclose(logit_move(quantized, reference), [0.2, 0.3])
    np.testing.assert_allclose(top_margin(quantized), [1.0, 0.1])
    record = choose_margin(quantized, reference)
    assert record["margin"] == pytest.approx(0.45) and record["calibration_share"] == 0.5


@pytest.fixture(scope="module")
def converted(tiny_classifier: Path, artifact_cache: Path):
    outcome = Converter(resolve(str(tiny_classifier)), artifact_cache, threads=2).convert_unit(OnnxRuntimeCpuInt8())
    assert outcome.ok, outcome.error
    return outcome


def test_near_ties_get_the_fp32_answer_and_the_rest_int8s(converted, tiny_classifier: Path):
    folder = converted.artifact_dir
    record = converted.manifest["graph"]["classifier_head"]["fallback"]
    assert json.loads((folder / FALLBACK_MARGIN).read_text()) == record and record["margin"] > 0
    loaded = OnnxRuntimeCpuInt8().load(folder, 2)
    assert isinstance(loaded, FallbackRunner) and loaded.tokens_per_call == 1 and loaded.margin == record["margin"]
    int8, fp32 = OrtRunner(folder / ARTIFACT, 2), OrtRunner(folder / FALLBACK, 2)
    model = resolve(str(tiny_classifier)).load()
    from siliconlab.data import agreement_texts

    feeds = [encode(model.tokenizer, [text], model.max_length, warn=False) for text in agreement_texts(40)]
    margins = np.array([top_margin(int8.run(*feed)["logits"])[0] for feed in feeds])
    # The tiny random head has no real near-ties: a margin at the median sends half the texts to fp32.
    runner = FallbackRunner(folder / ARTIFACT, folder / FALLBACK, 2, float(np.median(margins)))
    for feed, margin in zip(feeds, margins):
        expected = (fp32 if margin < runner.margin else int8).run(*feed)["logits"]
        np.testing.assert_array_equal(runner.run(*feed)["logits"], expected)
    assert runner.answered == 40 and runner.rechecked == int((margins < runner.margin).sum()) == 20


def test_weights_are_7_bit_only_on_x86_without_vnni():
    from siliconlab.units.onnxruntime.cpu_int8 import OnnxRuntimeCpuInt8, reduce_range

    assert reduce_range(["avx", "avx2", "fma"], "x86_64")  # AVX2 only: vpmaddubsw saturates int16
    assert not reduce_range(["avx2", "avx512f", "avx512_vnni"], "x86_64")  # AMD Zen 5 / Intel AVX-512 VNNI
    assert not reduce_range(["avx2", "avx_vnni"], "x86_64")  # AVX-VNNI (Alder Lake)
    assert not reduce_range([], "arm64")  # not x86: no vpmaddubsw
    recipe = OnnxRuntimeCpuInt8().recipe  # the choice made here is in the recipe: rebuilt on the other kind
    assert ("-rr-" in recipe) == reduce_range() and ("-w8-" in recipe) != reduce_range()
