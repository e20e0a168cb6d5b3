"""OpenVINO units, tested directly on a tiny random BERT: the fp32 IR keeps fp32 weights and matches PyTorch at
two shapes; the int8 IR stores its MatMul weights as int8 and stays within the int8 gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from siliconlab.models.base import LoadedModel
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.units.openvino.cpu import ARTIFACT, OpenVinoCpuFp32
from siliconlab.units.openvino.cpu_int8 import OpenVinoCpuInt8

SHAPES = ((1, 7), (3, 19))
LAYERS = 2


@pytest.fixture(scope="module")
def tiny_loaded() -> LoadedModel:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=512,
        hidden_size=32,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(1)
    return LoadedModel("tiny", BertModel(config).eval(), None, "embedding", 64, "test", config)


def _converted(unit, model: LoadedModel, folder: Path):
    if not unit.availability().ok:
        pytest.skip(f"{unit.name} unavailable: {unit.availability().reason}")
    folder.mkdir()
    conversion = unit.convert(model, folder)
    return conversion, unit.load(folder, threads=1)


def _constant_types(path: Path) -> dict[str, int]:
    import openvino as ov

    counts: dict[str, int] = {}
    for op in ov.Core().read_model(str(path)).get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_output_partial_shape(0).rank.get_length() == 2:
            kind = op.get_output_element_type(0).get_type_name()
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _cases(model: LoadedModel):
    for batch, seq in SHAPES:
        ids = np.random.default_rng(seq).integers(5, 512, size=(batch, seq), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[-1, seq // 2 :] = 0
        with torch.inference_mode():
            expected = EncoderWithHead(model.model, model.task)(torch.from_numpy(ids), torch.from_numpy(mask))
        yield ids, mask, [t.numpy() for t in expected]


def test_fp32_ir_keeps_fp32_weights_and_matches_torch(tiny_loaded: LoadedModel, tmp_path: Path):
    conversion, runner = _converted(OpenVinoCpuFp32(), tiny_loaded, tmp_path / "fp32")
    types = _constant_types(tmp_path / "fp32" / ARTIFACT)
    assert "f16" not in types and types.get("f32", 0) >= 6 * LAYERS, types  # saved with compress_to_fp16=False
    assert conversion.graph["ops"]["MatMul"] >= 6 * LAYERS  # Q, K, V, output, FFN in, FFN out per layer
    assert not (tmp_path / "fp32" / "exported.onnx").exists()  # the intermediate ONNX is removed
    for ids, mask, expected in _cases(tiny_loaded):
        got = runner.run(ids, mask)
        for (name, value), want in zip(got.items(), expected):
            np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_int8_ir_stores_int8_weights_within_the_gate(tiny_loaded: LoadedModel, tmp_path: Path):
    unit = OpenVinoCpuInt8()
    _, runner = _converted(unit, tiny_loaded, tmp_path / "int8")
    _converted(OpenVinoCpuFp32(), tiny_loaded, tmp_path / "fp32")
    types = _constant_types(tmp_path / "int8" / ARTIFACT)
    assert types.get("i8", 0) >= 6 * LAYERS, types  # every linear layer's weight in int8
    weights = {name: (tmp_path / name / ARTIFACT).with_suffix(".bin").stat().st_size for name in ("int8", "fp32")}
    assert weights["int8"] < 0.6 * weights["fp32"], weights
    for ids, mask, expected in _cases(tiny_loaded):
        pooled = runner.run(ids, mask)["sentence_embedding"]
        cosine = np.sum(pooled * expected[1], axis=1) / np.linalg.norm(expected[1], axis=1)  # pooled is unit-norm
        assert cosine.min() >= unit.cosine_min, cosine
