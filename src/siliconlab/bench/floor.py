"""The machine floor: measured GEMM rates per (device, precision), and model FLOPs counted from the config.

% of floor = achieved FLOP/s of a unit / the best GEMM rate this machine reached for that precision in the
same run. It answers "how close to the limit are we", with the limit measured, never looked up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def encoder_flops(config: Any, batch: int, seq: int) -> float:
    """FLOPs of one forward of a BERT-style encoder at a padded shape (multiply-add = 2 FLOPs).

    Per layer and token: Q, K, V, O projections (4·H²) and the FFN (2·H·I); per layer and sequence the
    attention scores and weighted sum (2·S²·H). Embeddings, LayerNorm, softmax and pooling are ignored.
    """
    hidden = int(config.hidden_size)
    inter = int(getattr(config, "intermediate_size", 4 * hidden))
    layers = int(config.num_hidden_layers)
    per_layer = seq * (4 * hidden * hidden + 2 * hidden * inter) + 2 * seq * seq * hidden
    return 2.0 * layers * batch * per_layer


def _best_rate(step, flops: float, seconds: float) -> float:
    step()
    samples = []
    started = time.perf_counter()
    while len(samples) < 3 or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        step()
        samples.append(time.perf_counter() - begin)
    return flops / min(samples)


def cpu_fp32_gemm(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    return _best_rate(lambda: torch.mm(a, b), 2.0 * size**3, seconds)


def cpu_int8_gemm(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """u8 x s8 -> s32 through ONNX Runtime's MatMulInteger (the kernel our int8 unit uses)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "int8_gemm_probe",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [size, size]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 128, (size, size), dtype=np.uint8),
        "b": rng.integers(-64, 64, (size, size), dtype=np.int8),
    }
    return _best_rate(lambda: session.run(None, feeds), 2.0 * size**3, seconds)


def cuda_gemm(dtype_name: str, size: int = 8192, seconds: float = 1.0) -> float:
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)

    def step() -> None:
        torch.mm(a, b)
        torch.cuda.synchronize()

    return _best_rate(step, 2.0 * size**3, seconds)


def cuda_fp8_gemm(size: int = 8192, seconds: float = 1.0) -> float:
    """e4m3 x e4m3 through torch._scaled_mm with per-row scales, as the fp8 unit runs its GEMMs."""
    import torch

    from siliconlab.ops import fp8

    if torch.cuda.get_device_capability() < (8, 9):
        raise RuntimeError(f"{torch.cuda.get_device_name()} has no fp8 tensor cores (needs compute capability 8.9)")
    a, a_scale = fp8.quantize_rows(torch.randn(size, size, device="cuda"))
    b, b_scale = fp8.quantize_rows(torch.randn(size, size, device="cuda"))

    def step() -> None:
        fp8.scaled_linear(a, a_scale, b, b_scale, out_dtype=torch.bfloat16)
        torch.cuda.synchronize()

    return _best_rate(step, 2.0 * size**3, seconds)


def measure_floors(devices: set[str], threads: int, quick: bool = False) -> dict[str, dict[str, Any]]:
    """{'cpu-fp32': {'gflops': ..., 'probe': ...}, ...}; a probe that cannot run says why."""
    seconds = 0.3 if quick else 0.5
    size = 512 if quick else 1024
    probes: dict[str, tuple[Any, str]] = {}
    if "cpu" in devices:
        probes["cpu-fp32"] = (lambda: cpu_fp32_gemm(threads, size, seconds), f"torch.mm fp32 {size}³")
        probes["cpu-int8"] = (lambda: cpu_int8_gemm(threads, size, seconds), f"ORT MatMulInteger u8s8 {size}³")
    if "cuda" in devices:
        cuda_size = 4096 if quick else 8192
        for precision in ("fp32", "fp16", "bf16"):
            probes[f"cuda-{precision}"] = (
                lambda p=precision: cuda_gemm(p, cuda_size, seconds),
                f"torch.mm {precision} {cuda_size}³",
            )
        fp8_label = f"torch._scaled_mm e4m3 row-scaled {cuda_size}³"
        probes["cuda-fp8"] = (lambda: cuda_fp8_gemm(cuda_size, seconds), fp8_label)
    floors: dict[str, dict[str, Any]] = {}
    # Interleaved rounds, best kept: a neighbour's burst during one probe must not lower the floor
    # (a low floor would flatter every % of floor in the run).
    for _ in range(1 if quick else 3):
        for key, (probe, label) in probes.items():
            if floors.get(key, {}).get("reason"):
                continue
            try:
                rate = probe() / 1e9
            except Exception as exc:  # a missing engine makes that floor n/a, never a guess
                floors[key] = {"gflops": None, "probe": label, "reason": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            if rate > (floors.get(key, {}).get("gflops") or 0.0):
                floors[key] = {"gflops": rate, "probe": label}
    return floors


def floor_key(device: str, precision: str) -> str:
    """int8/fp8 units are held to the int8 (or fp8) floor; float units to their own precision's floor."""
    return f"{device}-{precision}"
