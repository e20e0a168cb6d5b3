"""The machine floor: measured GEMM rates per (device, precision), and model FLOPs counted from the config.

% of floor = achieved FLOP/s of a unit / the best GEMM rate this machine reached for that precision in the
same run. It answers "how close to the limit are we", with the limit measured, never looked up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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


def _best_rate(step: Callable[[], Any], flops: float, seconds: float) -> float:
    step()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < 3 or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        step()
        samples.append(time.perf_counter() - begin)
    return flops / min(samples)


def cpu_fp32_gemm(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    from siliconlab.bench.floor_cpu import torch_fp32

    return _best_rate(torch_fp32(threads, size), 2.0 * size**3, seconds)


def cpu_int8_gemm(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """u8 x s8 -> s32 through ONNX Runtime's MatMulInteger (the kernel the dynamic-int8 unit uses)."""
    from siliconlab.bench.floor_cpu import ort_int8

    return _best_rate(ort_int8(threads, size), 2.0 * size**3, seconds)


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
    """{'cpu-fp32': {'gflops': best, 'probe': its label, 'probes': {label: gflops}}, ...}; a precision none of
    whose probes can run says why. CPU precisions are probed with every engine that has units in them."""
    from siliconlab.bench.floor_cpu import cpu_probes

    seconds = 0.25 if quick else 0.4
    probes: dict[str, list[tuple[str, Any]]] = {}
    if "cpu" in devices:
        # 512³ fits the caches of a small CPU; 1024³ (2048³ too when not quick) lets AMX tiles reach their peak.
        sizes = (512,) if quick else (512, 1024, 2048)
        for key, makers in cpu_probes(threads, sizes).items():
            probes[key] = [(label, _cpu_probe(make, _size_of(label), seconds)) for label, make in makers]
    if "cuda" in devices:
        cuda_size = 4096 if quick else 8192
        for precision in ("fp32", "fp16", "bf16"):
            label = f"torch.mm {precision} {cuda_size}³"
            probes[f"cuda-{precision}"] = [(label, lambda p=precision: cuda_gemm(p, cuda_size, seconds))]
        fp8_label = f"torch._scaled_mm e4m3 row-scaled {cuda_size}³"
        probes["cuda-fp8"] = [(fp8_label, lambda: cuda_fp8_gemm(cuda_size, seconds))]
    rates: dict[str, dict[str, float]] = {key: {} for key in probes}
    errors: dict[str, dict[str, str]] = {key: {} for key in probes}
    # Interleaved rounds, best kept: a neighbour's burst during one probe must not lower the floor
    # (a low floor would flatter every % of floor in the run).
    for _ in range(1 if quick else 2):
        for key, entries in probes.items():
            for label, probe in entries:
                if label in errors[key]:
                    continue
                try:
                    rate = probe() / 1e9
                except Exception as exc:  # a missing engine makes that probe n/a, never a guess
                    errors[key][label] = f"{type(exc).__name__}: {exc}"[:200]
                    continue
                rates[key][label] = max(rate, rates[key].get(label, 0.0))
    floors: dict[str, dict[str, Any]] = {}
    for key in probes:
        if rates[key]:
            best = max(rates[key], key=rates[key].__getitem__)
            floors[key] = {"gflops": rates[key][best], "probe": best, "probes": rates[key]}
        else:
            floors[key] = {"gflops": None, "probe": ", ".join(errors[key]), "reason": "; ".join(errors[key].values())}
    return floors


def _cpu_probe(make: Any, size: int, seconds: float) -> Any:
    """Build the engine's GEMM only when the probe runs (so a missing engine fails that probe alone)."""
    return lambda: _best_rate(make(), 2.0 * size**3, seconds)


def _size_of(label: str) -> int:
    return int(label.rsplit(" ", 1)[1].rstrip("³"))


def floor_key(device: str, precision: str) -> str:
    """int8/fp8 units are held to the int8 (or fp8) floor; float units to their own precision's floor."""
    return f"{device}-{precision}"
