"""SmoothQuant on an ONNX graph, so ORT's dynamic int8 stays accurate on small encoders.

Dynamic quantization scales each activation tensor as a whole; BERT-family activations carry a few
outlier channels that eat the int8 range (MiniLM falls to cosine ~0.93). SmoothQuant (Xiao et al. 2023)
divides each input channel by s_k and multiplies the matching weight row by s_k, s_k = a_k^α / w_k^(1-α),
moving the outliers into the per-channel-quantized weights. The function is unchanged in exact arithmetic;
the division is one Mul node per quantized MatMul/Attention, or none where it folds into the producer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import onnx
from onnx import numpy_helper

_TARGET_OPS = ("MatMul", "Attention")


def _targets(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.TensorProto]]:
    """(node, weight initializer) for every MatMul/Attention whose second input is a 2-D constant weight."""
    inits = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type in _TARGET_OPS and len(node.input) > 1 and node.input[1] in inits:
            weight = inits[node.input[1]]
            if len(weight.dims) == 2:
                found.append((node, weight))
    return found


def activation_channel_max(
    model: onnx.ModelProto, feeds: Iterable[dict[str, np.ndarray]], threads: int = 2
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of each target's input over the calibration feeds (valid tokens only)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = sorted({node.input[0] for node, _ in _targets(model)})
    existing = {out.name for out in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for feed in feeds:
        outputs = session.run(names, feed)
        mask = feed["attention_mask"].astype(bool)
        for name, value in zip(names, outputs):
            rows = value[mask] if value.ndim == 3 else value.reshape(-1, value.shape[-1])
            channel_max = np.abs(rows).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, channel_max), channel_max)
    return maxima


def _v_columns(attention: onnx.NodeProto, width: int) -> slice:
    """The value projection's columns in a fused Attention node's packed QKV weight."""
    sizes = next((list(a.ints) for a in attention.attribute if a.name == "qkv_hidden_sizes"), None)
    if sizes:
        return slice(sizes[0] + sizes[1], sizes[0] + sizes[1] + sizes[2])
    return slice(2 * width // 3, width)


def smooth(
    model: onnx.ModelProto,
    channel_max: dict[str, np.ndarray],
    alpha: float,
    skip: Collection[str] = (),
    fold: bool = True,
) -> dict[str, int]:
    """Rewrite `model` in place (nodes named in `skip` are left alone); returns {"nodes": smoothed, "folded": k}.

    Where the input comes from a fused Attention node and feeds nothing else (the attention output projection),
    1/s is folded into that node's value weights and bias instead of a Mul: the context is a per-head convex
    combination of value rows, so scaling value channels scales the context channels exactly, and with
    per-channel weight quantization the value weights quantize the same. A Mul costs ~7 us at MiniLM's 19 tokens
    (docs/units.md).
    """
    inits = {init.name: init for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for out in model.graph.output:
        readers[out.name] = readers.get(out.name, 0) + 1
    count = folded = 0
    new_nodes: list[tuple[int, onnx.NodeProto]] = []
    for node, weight_init in _targets(model):
        act = channel_max.get(node.input[0])
        if act is None or node.name in skip:
            continue
        weight = numpy_helper.to_array(weight_init).astype(np.float32)
        w_max = np.abs(weight).max(axis=1)
        scale = np.power(np.maximum(act, 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1.0 - alpha)
        scale = np.clip(scale, 1e-2, 1e2).astype(np.float32)
        weight_init.CopyFrom(numpy_helper.from_array(weight * scale[:, None], weight_init.name))
        count += 1
        source = producers.get(node.input[0])
        if (
            fold
            and source is not None
            and source.op_type == "Attention"
            and source.output[0] == node.input[0]
            and readers.get(node.input[0]) == 1
            and source.input[1] in inits
        ):
            for index in (1, 2):  # packed QKV weight [hidden, 3*hidden] and bias [3*hidden]
                if len(source.input) <= index or not source.input[index]:
                    continue
                init = inits[source.input[index]]
                values = numpy_helper.to_array(init).astype(np.float32).copy()
                columns = _v_columns(source, values.shape[-1])
                values[..., columns] /= scale
                init.CopyFrom(numpy_helper.from_array(values, init.name))
            folded += 1
            continue
        inv_name = f"{node.name or node.output[0]}_smooth_inv"
        smoothed = f"{node.input[0]}_smoothed_for_{node.name or node.output[0]}"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inv_name))
        mul = onnx.helper.make_node("Mul", [node.input[0], inv_name], [smoothed], name=f"{inv_name}_Mul")
        node.input[0] = smoothed
        position = list(model.graph.node).index(node)
        new_nodes.append((position, mul))
    for position, mul in sorted(new_nodes, key=lambda item: -item[0]):
        model.graph.node.insert(position, mul)
    return {"nodes": count, "folded": folded}
