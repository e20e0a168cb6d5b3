"""Attention for short sequences (<= 128 tokens) in one Triton kernel, straight from the fused Q/K/V GEMM's output.

Why: at batch 1 the cuDNN flash kernel SDPA picks takes ~4 us per layer plus a memset, and it cannot join
programmatic dependent launch, so the GEMM after it cannot start early. All keys of a short sequence fit one
tile: scores = Q K^T * scale, key-padding mask, softmax in fp32, P V — no online rescaling needed. Reads
Q/K/V from the [tokens, 3*hidden] GEMM output and writes [tokens, hidden] with heads side by side, so no
permute/reshape copies either. Longer sequences stay on SDPA.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from siliconlab.units.fastbert.kernels import common as cuda_kernels
from siliconlab.units.fastbert.kernels.common import grid_dependency

MAX_SEQ = 128
#: queries per program: 32 gives 4 x heads x batch programs at 128 tokens (48 at batch 1 for BERT-base)
BLOCK_M = 32
LOG2E = 1.4426950408889634


@triton.jit
def _attention_kernel(
    qkv_ptr, mask_ptr, out_ptr, seq, hidden, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_S: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    grid_dependency(GDC)
    pid_m = tl.program_id(0)
    head = tl.program_id(1)
    b = tl.program_id(2)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    keys = tl.arange(0, BLOCK_S)
    d = tl.arange(0, HEAD_DIM)
    stride = 3 * hidden
    base = qkv_ptr + b * seq * stride + head * HEAD_DIM
    q = tl.load(base + rows[:, None] * stride + d[None, :], mask=rows[:, None] < seq, other=0.0)
    k = tl.load(base + hidden + keys[:, None] * stride + d[None, :], mask=keys[:, None] < seq, other=0.0)
    v = tl.load(base + 2 * hidden + keys[:, None] * stride + d[None, :], mask=keys[:, None] < seq, other=0.0)
    valid = tl.load(mask_ptr + b * seq + keys, mask=keys < seq, other=0) != 0
    scores = tl.dot(q, tl.trans(k)) * qk_scale  # log2 domain: exp2 below
    scores = tl.where(valid[None, :], scores, float("-inf"))
    p = tl.exp2(scores - tl.max(scores, axis=1)[:, None])
    out = tl.dot(p.to(v.dtype), v) / tl.sum(p, axis=1)[:, None]
    out_ptrs = out_ptr + (b * seq + rows)[:, None] * hidden + head * HEAD_DIM + d[None, :]
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=rows[:, None] < seq)


def supports(seq: int, head_dim: int) -> bool:
    return seq <= MAX_SEQ and head_dim in (16, 32, 64, 128)


def attention(qkv: torch.Tensor, mask: torch.Tensor, batch: int, seq: int, heads: int) -> torch.Tensor:
    """qkv [batch*seq, 3*hidden] -> context [batch*seq, hidden]; mask [batch, seq] (0 = padding key).

    Every sequence must have at least one unmasked key (the runners guarantee it, padded batch rows too).
    """
    hidden = qkv.shape[1] // 3
    head_dim = hidden // heads
    out = torch.empty((batch * seq, hidden), dtype=qkv.dtype, device=qkv.device)
    block_s = max(16, triton.next_power_of_2(seq))
    grid = (triton.cdiv(seq, BLOCK_M), heads, batch)
    pdl = cuda_kernels.PDL
    _attention_kernel[grid](qkv, mask, out, seq, hidden, LOG2E / math.sqrt(head_dim), HEAD_DIM=head_dim,
                            BLOCK_M=BLOCK_M, BLOCK_S=block_s, GDC=pdl, launch_pdl=pdl, num_warps=4)  # fmt: skip
    return out
