"""The int8 classifier head (units/onnxruntime/head.py): found in a real exported graph (a Hugging Face
*ForSequenceClassification: Gemm on the pooler), kept in fp32, its bias corrected so the int8 graph's mean
logits match the fp32 graph's on the correction texts. (siliconlab's own mean-pool head, MatMul + Add, is
converted by the tasks tests.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from siliconlab.convert.pipeline import Converter
from siliconlab.models import resolve
from siliconlab.units.onnxruntime.cpu import ARTIFACT, OrtRunner
from siliconlab.units.onnxruntime.cpu_int8 import OnnxRuntimeCpuInt8, _feed
from siliconlab.units.onnxruntime.head import correct_bias, expose_input, find_head, hide_input, mean_logits


@pytest.fixture(scope="module")
def converted(tiny_classifier: Path, artifact_cache: Path):
    """The session's shared conversion of the tiny classifier (the registry tests convert it too)."""
    outcome = Converter(resolve(str(tiny_classifier)), artifact_cache, threads=2).convert_unit(OnnxRuntimeCpuInt8())
    assert outcome.ok, outcome.error
    return outcome


def test_the_head_stays_fp32_and_the_calibration_output_is_gone(converted):
    record = converted.manifest["graph"]["classifier_head"]
    graph = onnx.load(str(converted.artifact_dir / ARTIFACT))
    assert [out.name for out in graph.graph.output] == ["logits"]
    producers = {out: node for node in graph.graph.node for out in node.output}
    head = producers[producers["logits"].input[0]]
    assert head.op_type in ("MatMul", "Gemm") and head.name.startswith(record["fp32_node"])  # not MatMulInteger
    assert sum(node.op_type == "MatMulInteger" for node in graph.graph.node) >= 4  # the encoder is int8
    assert record["correction_texts"] > 0 and len(record["bias_correction"]) == 3


def test_bias_correction_aligns_mean_logits_with_fp32(converted, tiny_classifier: Path):
    from siliconlab.data import calibration_texts

    model = resolve(str(tiny_classifier)).load()
    feeds = [_feed(model, text) for text in calibration_texts(64)]  # a local folder corrects on these
    int8 = mean_logits(OrtRunner(converted.artifact_dir / ARTIFACT, 2), feeds)
    record = converted.manifest["graph"]["classifier_head"]
    before = int8 - np.asarray(record["bias_correction"])
    graph = onnx.load(str(converted.artifact_dir / ARTIFACT))
    site = find_head(graph)
    assert site is not None
    correct_bias(graph, site, -np.asarray(record["bias_correction"], dtype=np.float32))
    expose_input(graph, site)
    hide_input(graph, site)
    undone = Path(converted.artifact_dir.parent / "undone.onnx")
    onnx.save(graph, str(undone))
    assert np.allclose(mean_logits(OrtRunner(undone, 2), feeds), before, atol=1e-5)
    undone.unlink()
    # The fp32 reference: the same model exported without quantization.
    from siliconlab.units.onnxruntime.cpu import OnnxRuntimeCpuFp32

    fp32 = Converter(resolve(str(tiny_classifier)), converted.artifact_dir.parent.parent, 2).convert_unit(
        OnnxRuntimeCpuFp32()
    )
    reference = mean_logits(OrtRunner(fp32.artifact_dir / ARTIFACT, 2), feeds)
    assert np.abs(int8 - reference).max() < 1e-4  # corrected: the mean shift is gone
    assert np.abs(before - reference).max() > np.abs(int8 - reference).max()


def test_an_embedding_graph_has_no_head(tiny_bert: Path, tmp_path: Path):
    from siliconlab.units.onnxruntime.export import export_onnx

    model = resolve(str(tiny_bert)).load()
    assert find_head(onnx.load(str(export_onnx(model, tmp_path / "m.onnx")))) is None
