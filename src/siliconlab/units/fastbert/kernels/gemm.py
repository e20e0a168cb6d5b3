"""Small-M GEMMs for the fused encoder, in Triton: y = x W^T (+ bias (+ exact GELU)), or split-K partial sums.

Why: at batch 1 (M = 128 tokens) cuBLAS picks 128x128 tiles, i.e. 6-24 thread blocks on a 132-SM H100, and
each of BERT-base's GEMMs takes 3.7-6.8 us where its weight bytes need 0.3-1.6 us (benchmarks/gpu/NOTES.md).
Narrower tiles, and for the two projections that feed a LayerNorm a split of K whose partial sums the
LayerNorm kernel adds anyway, spread the weight read over the whole chip. Large M stays on cuBLAS.

Only imported where triton exists; the tile choice (`choose`) is plain Python and tested on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from siliconlab.units.fastbert.gemm_tiles import GemmConfig, choose
from siliconlab.units.fastbert.kernels import common as cuda_kernels
from siliconlab.units.fastbert.kernels.common import grid_dependency, prefetch_l2

NO_EPILOGUE, BIAS, BIAS_GELU = 0, 1, 2


@triton.jit
def _gemm_kernel(
    x_ptr, w_ptr, bias_ptr, out_ptr, M, N, K, stride_xm, k_per_split,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EPILOGUE: tl.constexpr, GDC: tl.constexpr,
    LINE: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = pid_k * k_per_split + tl.arange(0, BLOCK_K)
    if GDC:  # launched early (PDL): fetch this program's weight slice into L2 while the previous kernel runs
        lines = tl.minimum(rn, N - 1)[:, None] * K + pid_k * k_per_split + tl.arange(0, BLOCK_K // LINE)[None, :] * LINE
        for kk in range(0, k_per_split, BLOCK_K):
            prefetch_l2(w_ptr + lines + kk)
    grid_dependency(GDC)
    m_mask = rm[:, None] < M
    n_mask = rn[:, None] < N
    x_ptrs = x_ptr + rm[:, None] * stride_xm + rk[None, :]
    w_ptrs = w_ptr + rn[:, None] * K + rk[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for _ in range(0, k_per_split, BLOCK_K):
        a = tl.load(x_ptrs, mask=m_mask, other=0.0)
        b = tl.load(w_ptrs, mask=n_mask, other=0.0)
        acc = tl.dot(a, tl.trans(b), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    if EPILOGUE >= 1:
        acc += tl.load(bias_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
    if EPILOGUE == 2:
        acc = 0.5 * acc * (1.0 + tl.math.erf(acc * 0.7071067811865476))
    out_ptrs = out_ptr + pid_k * M * N + rm[:, None] * N + rn[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=m_mask & (rn[None, :] < N))


@dataclass
class SmallGemm:
    """Tile choices per GEMM shape; `sms` is the device's multiprocessor count (the grid to fill)."""

    sms: int

    def linear(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        gelu: bool = False,
        split: bool = False,
        config: GemmConfig | None = None,
    ) -> torch.Tensor:
        """[M, N] in x's dtype; with `split`, [splits, M, N] fp32 partial sums (no bias) for a consumer to add."""
        m, k = x.shape
        n = weight.shape[0]
        if x.stride(1) != 1:
            x = x.contiguous()
        cfg = config or choose(m, n, k, self.sms, split)
        if cfg is None:
            raise ValueError(f"no Triton tiling for K={k} (needs a multiple of 16); use cuBLAS")
        epilogue = BIAS_GELU if gelu else (BIAS if bias is not None else NO_EPILOGUE)
        if split:
            out = torch.empty((cfg.splits, m, n), dtype=torch.float32, device=x.device)
        else:
            out = torch.empty((m, n), dtype=x.dtype, device=x.device)
        grid = (triton.cdiv(n, cfg.block_n), triton.cdiv(m, cfg.block_m), cfg.splits)
        _gemm_kernel[grid](
            x, weight, bias if bias is not None else weight, out, m, n, k, x.stride(0), k // cfg.splits,
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, EPILOGUE=epilogue,
            num_warps=cfg.warps, num_stages=cfg.stages, GDC=cuda_kernels.PDL, launch_pdl=cuda_kernels.PDL,
            LINE=max(1, 128 // weight.element_size()),
        )  # fmt: skip
        return out


def for_device(device: torch.device) -> SmallGemm:
    return SmallGemm(torch.cuda.get_device_properties(device).multi_processor_count)
