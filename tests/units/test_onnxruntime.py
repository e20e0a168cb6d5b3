"""ONNX Runtime units' graph work, tested directly: the ONNX export, the CPU export's constant pruning, SmoothQuant.

Small random graphs and a tiny random BERT (hidden 32, 2 layers): each rewrite must compute the same function
as the graph it came from, and change the graph where it claims to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from siliconlab.models.base import LoadedModel
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.units.onnxruntime import cpu
from siliconlab.units.onnxruntime.export import export_onnx
from siliconlab.units.onnxruntime.smoothquant import activation_channel_max, smooth

SHAPES = ((1, 7), (3, 19))  # two batch/sequence shapes, neither the (2, 8) sample the export traces with


@pytest.fixture(scope="module")
def tiny_loaded() -> LoadedModel:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=512,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = BertModel(config).eval()
    return LoadedModel("tiny", model, None, "embedding", 64, "test", config)


def _inputs(batch: int, seq: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(batch * 100 + seq)
    ids = rng.integers(5, 512, size=(batch, seq), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[-1, seq // 2 :] = 0  # a padded row: padding must stay out of the pooled output
    return ids, mask


def _session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _torch(loaded: LoadedModel, ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        out = EncoderWithHead(loaded.model, loaded.task)(torch.from_numpy(ids), torch.from_numpy(mask))
    return [t.numpy() for t in out]


# ---- export_onnx: the shared exporter ---------------------------------------------------------------------


def test_export_matches_torch_at_other_shapes(tiny_loaded: LoadedModel, tmp_path: Path):
    session = _session(export_onnx(tiny_loaded, tmp_path / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["token_states", "sentence_embedding"]
    assert [i.shape for i in session.get_inputs()] == [["batch", "seq"], ["batch", "seq"]]
    for batch, seq in SHAPES:
        ids, mask = _inputs(batch, seq)
        got = session.run(None, {"input_ids": ids, "attention_mask": mask})
        for name, g, e in zip(("token_states", "sentence_embedding"), got, _torch(tiny_loaded, ids, mask)):
            assert g.shape == e.shape, name
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=name)


# ---- export_fused + prune_constant_work: the CPU unit's graph ------------------------------------------------


def _divides_by_expand(model: onnx.ModelProto) -> list[str]:
    producers = {out: node for node in model.graph.node for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "Div" and getattr(producers.get(node.input[1]), "op_type", None) == "Expand"
    ]


def test_pruning_drops_constant_work_and_keeps_outputs(tiny_loaded: LoadedModel, tmp_path: Path, monkeypatch):
    """Zero token_type_ids fold into the position table; F.normalize's Shape+Expand goes; outputs unchanged."""
    before = onnx.ModelProto()
    real = cpu.prune_constant_work

    def keep_a_copy(graph: onnx.ModelProto) -> int:
        before.CopyFrom(graph)
        return real(graph)

    monkeypatch.setattr(cpu, "prune_constant_work", keep_a_copy)
    path, fused = cpu.export_fused(tiny_loaded, tmp_path)
    after = onnx.load(str(path))

    def ops(model: onnx.ModelProto) -> list[str]:
        return [node.op_type for node in model.graph.node]

    assert "ConstantOfShape" in ops(before) and _divides_by_expand(before)  # the pattern was there to prune
    assert "ConstantOfShape" not in ops(after) and "Expand" not in ops(after) and not _divides_by_expand(after)
    assert fused["pruned_nodes"] == len(before.graph.node) - len(after.graph.node) > 0
    (embed,) = [node for node in after.graph.node if node.op_type == "EmbedLayerNormalization"]
    assert embed.input[1] == "" and embed.input[4] == ""  # no segment ids, no segment table
    position_name = embed.input[3]
    old = {i.name: numpy_helper.to_array(i) for i in before.graph.initializer}
    new = {i.name: numpy_helper.to_array(i) for i in after.graph.initializer}
    (segment_name,) = [n.input[4] for n in before.graph.node if n.op_type == "EmbedLayerNormalization"]
    np.testing.assert_allclose(new[position_name], old[position_name] + old[segment_name][0], rtol=0, atol=1e-7)

    pruned, unpruned = cpu.OrtRunner(path, threads=1), _session(before)
    for batch, seq in SHAPES:
        ids, mask = _inputs(batch, seq)
        got = pruned.run(ids, mask)
        reference = unpruned.run(None, {"input_ids": ids, "attention_mask": mask})
        for (name, value), expected, exact in zip(got.items(), reference, _torch(tiny_loaded, ids, mask)):
            np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(value, exact, rtol=1e-4, atol=1e-4, err_msg=name)


# ---- SmoothQuant -----------------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return _session(model).run(None, feed)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _expected_scale(act: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    w_max = np.abs(weight).max(axis=1)
    scale = np.maximum(act, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1 - alpha)
    return np.clip(scale, 1e-2, 1e2)


def _two_matmuls() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    weights = {"w1": rng.normal(size=(16, 24)).astype(np.float32), "w2": rng.normal(size=(24, 8)).astype(np.float32)}
    model = _model(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], name="second"),
        ],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 16]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 8])],
        weights,
    )
    return model, weights


def _feed(shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    x[..., 3] *= 40.0  # an outlier channel, what SmoothQuant is for
    return {"x": x, "attention_mask": np.ones(shape[:2], dtype=np.int64)}


def test_activation_maxima_count_valid_tokens_only():
    model, _ = _two_matmuls()
    feed = _feed((2, 6, 16), seed=1)
    feed["attention_mask"][1, 4:] = 0
    feed["x"][1, 4:] = 1e6  # padding: must not count
    maxima = activation_channel_max(model, [feed], threads=1)
    assert set(maxima) == {"x", "r"}
    np.testing.assert_allclose(maxima["x"], np.abs(feed["x"][feed["attention_mask"].astype(bool)]).max(axis=0))


def test_smoothing_with_muls_keeps_the_function_and_scales_the_weights():
    model, weights = _two_matmuls()
    maxima = activation_channel_max(model, [_feed((2, 6, 16), seed=seed) for seed in (2, 3)], threads=1)
    smoothed = _copy(model)
    assert smooth(smoothed, maxima, alpha=0.5) == {"nodes": 2, "folded": 0}
    inits = {i.name: numpy_helper.to_array(i) for i in smoothed.graph.initializer}
    for node, act_name, weight_name in (("first", "x", "w1"), ("second", "r", "w2")):
        scale = _expected_scale(maxima[act_name], weights[weight_name], 0.5)
        np.testing.assert_allclose(inits[weight_name], weights[weight_name] * scale[:, None], rtol=1e-6)
        np.testing.assert_allclose(inits[f"{node}_smooth_inv"], 1.0 / scale, rtol=1e-6)
    assert scale.max() > 1.5 * scale.min()  # the scales really differ per channel
    assert [n.op_type for n in smoothed.graph.node] == ["Mul", "MatMul", "Relu", "Mul", "MatMul"]
    for seed in (4, 5):  # fresh inputs, not the calibration ones
        feed = _feed((3, 5, 16), seed)
        np.testing.assert_allclose(_run(smoothed, feed)[0], _run(model, feed)[0], rtol=1e-4, atol=1e-4)


def test_skipped_nodes_are_left_alone():
    model, weights = _two_matmuls()
    maxima = activation_channel_max(model, [_feed((2, 6, 16), seed=2)], threads=1)
    smoothed = _copy(model)
    assert smooth(smoothed, maxima, alpha=0.5, skip={"second"}) == {"nodes": 1, "folded": 0}
    inits = {i.name: numpy_helper.to_array(i) for i in smoothed.graph.initializer}
    np.testing.assert_array_equal(inits["w2"], weights["w2"])
    assert [n.op_type for n in smoothed.graph.node] == ["Mul", "MatMul", "Relu", "MatMul"]


def _attention_then_projection(extra_reader: bool) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """ORT's fused Attention (hidden 8, 2 heads) feeding an output projection MatMul, as in an optimized BERT."""
    rng = np.random.default_rng(7)
    weights = {
        "qkv": rng.normal(size=(8, 24)).astype(np.float32),
        "qkv_bias": rng.normal(size=24).astype(np.float32),
        "wo": rng.normal(size=(8, 8)).astype(np.float32),
    }
    attention = helper.make_node(
        "Attention", ["x", "qkv", "qkv_bias"], ["ctx"], name="attn", domain="com.microsoft", num_heads=2
    )
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 8])]
    if extra_reader:  # the context is also read elsewhere: folding would change that reader's input
        outputs.append(helper.make_tensor_value_info("ctx", TensorProto.FLOAT, ["b", "s", 8]))
    model = _model(
        [attention, helper.make_node("MatMul", ["ctx", "wo"], ["y"], name="proj")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 8])],
        outputs,
        weights,
    )
    return model, weights


def test_folding_into_attention_value_weights_keeps_the_function():
    model, weights = _attention_then_projection(extra_reader=False)
    act = np.random.default_rng(8).uniform(0.1, 30.0, size=8).astype(np.float32)
    smoothed = _copy(model)
    assert smooth(smoothed, {"ctx": act}, alpha=0.5) == {"nodes": 1, "folded": 1}
    assert [n.op_type for n in smoothed.graph.node] == ["Attention", "MatMul"]  # no Mul: folded
    scale = _expected_scale(act, weights["wo"], 0.5)
    inits = {i.name: numpy_helper.to_array(i) for i in smoothed.graph.initializer}
    np.testing.assert_allclose(inits["qkv"][:, :16], weights["qkv"][:, :16])  # Q and K untouched
    np.testing.assert_allclose(inits["qkv"][:, 16:], weights["qkv"][:, 16:] / scale, rtol=1e-6)
    np.testing.assert_allclose(inits["qkv_bias"][16:], weights["qkv_bias"][16:] / scale, rtol=1e-6)
    x = np.random.default_rng(9).normal(size=(2, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(smoothed, {"x": x})[0], _run(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_a_context_with_another_reader_gets_a_mul_instead():
    model, _ = _attention_then_projection(extra_reader=True)
    act = np.random.default_rng(8).uniform(0.1, 30.0, size=8).astype(np.float32)
    smoothed = _copy(model)
    assert smooth(smoothed, {"ctx": act}, alpha=0.5) == {"nodes": 1, "folded": 0}
    assert [n.op_type for n in smoothed.graph.node] == ["Attention", "Mul", "MatMul"]
    x = np.random.default_rng(9).normal(size=(2, 5, 8)).astype(np.float32)
    for got, want in zip(_run(smoothed, {"x": x}), _run(model, {"x": x})):  # y and the untouched context
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
