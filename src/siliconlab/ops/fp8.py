"""FP8 (e4m3) scaling math and the scaled-matmul Linear used by torch-cuda-fp8.

Weights: one scale per output channel (row of W); activations: one scale per token (row of X), computed
on the fly — inside the LayerNorm/GELU kernels that produce them where possible. y = (Xq Wq^T) * sx * sw
is one `torch._scaled_mm` call (per-row scaling, bf16 output, fp32 accumulation).

Error model: e4m3 keeps 3 mantissa bits, so a value in the normal range is rounded to within 2^-4 of itself
(relative); below 2^-6 * scale it falls into subnormals, spaced 2^-9 * scale apart, so the absolute error
there is at most 2^-10 * scale. `quantization_error_bound` states exactly that and the tests check it.

The unit's path uses row_scales, quantize, quantize_rows and scaled_linear. The rest are tested references,
on no unit's path: tensor_scale/quantize_tensor (the per-tensor scaling the per-row choice is checked
against), dequantize, quantization_error_bound and reference_linear (tests/ops/test_fp8.py).
"""

from __future__ import annotations

import torch

FP8 = torch.float8_e4m3fn
E4M3_MAX = 448.0
#: Scales never go below this, so an all-zero row quantizes to zeros instead of dividing by zero.
MIN_AMAX = 1e-12


def row_scales(x: torch.Tensor) -> torch.Tensor:
    """Per-row scale [rows, 1] (fp32) that maps each row's largest magnitude onto E4M3_MAX."""
    amax = x.detach().abs().amax(dim=-1, keepdim=True).float()
    return amax.clamp(min=MIN_AMAX) / E4M3_MAX


def tensor_scale(x: torch.Tensor) -> torch.Tensor:
    """One fp32 scale (0-dim) for the whole tensor. Tested reference: the units scale per row."""
    return x.detach().abs().amax().float().clamp(min=MIN_AMAX) / E4M3_MAX


def quantize(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x / scale rounded to e4m3 (round-to-nearest-even); saturates instead of overflowing to NaN."""
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(FP8)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = row_scales(x)
    return quantize(x, scale), scale


def quantize_tensor(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor quantization. Tested reference: shows what per-row scales save on uneven rows."""
    scale = tensor_scale(x)
    return quantize(x, scale), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Back to fp32. Tested reference: the GEMM consumes fp8 operands directly."""
    return q.float() * scale


def quantization_error_bound(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per-element bound on |x - dequantize(quantize(x))|: half a unit in the last place of e4m3 (tested reference)."""
    relative = x.float().abs() * 2.0**-4
    subnormal = scale * 2.0**-10
    return torch.maximum(relative, subnormal.expand_as(relative)) * (1 + 1e-6)


def scaled_linear(
    x_q: torch.Tensor,
    x_scale: torch.Tensor,
    w_q: torch.Tensor,
    w_scale: torch.Tensor,
    bias: torch.Tensor | None = None,
    out_dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """(x_q * x_scale) @ (w_q * w_scale)^T + bias with fp8 operands: x_q [M, K], w_q [N, K], scales [M,1]/[N,1]."""
    return torch._scaled_mm(
        x_q, w_q.t(), scale_a=x_scale, scale_b=w_scale.t(), bias=bias, out_dtype=out_dtype, use_fast_accum=False
    )


def reference_linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """What scaled_linear computes, in fp32 through dequantized operands. Tested reference, on no unit's path."""
    x_q, x_scale = quantize_rows(x)
    w_q, w_scale = quantize_rows(w)
    out = dequantize(x_q, x_scale) @ dequantize(w_q, w_scale).t()
    return out if bias is None else out + bias.float()
