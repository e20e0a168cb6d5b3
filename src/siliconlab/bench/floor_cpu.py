"""CPU floor probes: the GEMM rate each engine reaches for each precision, so % of floor means "of what this CPU's
matrix units did in this run", whatever engine a unit uses.

One probe per (engine, precision, size); a precision's floor is the best of its probes. Measured because a single
engine's probe is not a floor: on an Intel Xeon with AMX the old torch-fp32 / ORT-int8 pair let an OpenVINO unit
that silently ran bf16 print 115 % of floor. OpenVINO's FullyConnected kernels are probed with the precision
read back from the compiled graph, so a bf16 probe that the plugin ran in fp32 is reported, not trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from siliconlab.cpu_features import detect

Step = Callable[[], Any]


def torch_fp32(threads: int, size: int) -> Step:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    return lambda: torch.mm(a, b)


def _ort_session(node: str, a_type: int, b_type: int, out_type: int, size: int, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    inputs = [helper.make_tensor_value_info(name, kind, [size, size]) for name, kind in (("a", a_type), ("b", b_type))]
    output = helper.make_tensor_value_info("c", out_type, [size, size])
    graph = helper.make_graph([helper.make_node(node, ["a", "b"], ["c"])], "gemm_probe", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_fp32(threads: int, size: int) -> Step:
    from onnx import TensorProto

    session = _ort_session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, size, threads)
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((size, size), dtype=np.float32) for name in ("a", "b")}
    return lambda: session.run(None, feeds)


def ort_int8(threads: int, size: int) -> Step:
    """u8 x s8 -> s32 through MatMulInteger: the kernel the dynamic-int8 unit runs."""
    from onnx import TensorProto

    session = _ort_session("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, size, threads)
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 128, (size, size), dtype=np.uint8),
        "b": rng.integers(-64, 64, (size, size), dtype=np.int8),
    }
    return lambda: session.run(None, feeds)


def openvino_matmul(precision: str, threads: int, size: int) -> Step:
    """A constant-weight MatMul (what OpenVINO compiles to FullyConnected, as in an encoder) in 'fp32', 'bf16' or
    'int8' (FakeQuantize on both inputs: the static-int8 units' pattern). Raises when the plugin runs another."""
    import openvino as ov
    import openvino.opset13 as ops

    from siliconlab.units.openvino.cpu import matmul_precisions

    rng = np.random.default_rng(0)
    data = ops.parameter([size, size], ov.Type.f32, name="a")
    x, weight = data, ops.constant(rng.standard_normal((size, size), dtype=np.float32))
    if precision == "int8":
        lo, hi = ops.constant(np.float32(-4.0)), ops.constant(np.float32(4.0))
        x = ops.fake_quantize(data, lo, hi, lo, hi, 256)
        weight = ops.fake_quantize(weight, lo, hi, lo, hi, 255)
    hint = "bf16" if precision == "bf16" or (precision == "int8" and detect().bf16_native) else "f32"
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    compiled = ov.Core().compile_model(ov.Model([ops.matmul(x, weight, False, False)], [data]), "CPU", config)
    ran = matmul_precisions(compiled)
    if set(ran) != {precision}:
        raise RuntimeError(f"OpenVINO ran the {precision} probe as {ran}")
    request = compiled.create_infer_request()
    feed = {"a": rng.standard_normal((size, size), dtype=np.float32)}
    return lambda: request.infer(feed)


def cpu_probes(threads: int, sizes: tuple[int, ...]) -> dict[str, list[tuple[str, Callable[[], Step]]]]:
    """{'cpu-fp32': [(label, make_step), ...], ...}; bf16 only where the CPU has bf16 arithmetic."""
    probes: dict[str, list[tuple[str, Callable[[], Step]]]] = {"cpu-fp32": [], "cpu-bf16": [], "cpu-int8": []}
    for size in sizes:
        cube = f"{size}³"
        probes["cpu-fp32"] += [
            (f"torch.mm fp32 {cube}", partial(torch_fp32, threads, size)),
            (f"ORT MatMul fp32 {cube}", partial(ort_fp32, threads, size)),
            (f"OpenVINO FullyConnected fp32 {cube}", partial(openvino_matmul, "fp32", threads, size)),
        ]
        probes["cpu-int8"] += [
            (f"ORT MatMulInteger u8s8 {cube}", partial(ort_int8, threads, size)),
            (f"OpenVINO FullyConnected int8 {cube}", partial(openvino_matmul, "int8", threads, size)),
        ]
        if detect().bf16_native:
            probes["cpu-bf16"].append(
                (f"OpenVINO FullyConnected bf16 {cube}", partial(openvino_matmul, "bf16", threads, size))
            )
    if not probes["cpu-bf16"]:
        del probes["cpu-bf16"]
    return probes
