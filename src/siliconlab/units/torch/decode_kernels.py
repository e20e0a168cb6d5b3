"""Triton kernels for one Llama decode step: five kernels per layer instead of Inductor's ~11 or HF's ~49.

Why: at batch 1 a decode step is bound by how many kernels run one after the other (benchmarks/gpu/NOTES.md,
session 4: ~2.5 us each inside a CUDA graph), not by its 0.27 GB of weight bytes. Each kernel here folds the
small elementwise work into the matrix-vector product next to it:

- `gemv`: y = W @ prologue(x) (+ residual), W the nn.Linear weight [N, K] (rows contiguous). Prologue 0: x as is;
  1: RMSNorm (fp32 statistics, rounded to the model dtype, times the norm weight: HF's arithmetic); 2: SiLU(gate)
  * up from the gate-up GEMV's output [.., 2K]. Each program holds a [BLOCK_N, K] weight tile in registers and
  reuses it for every batch row, so a weight byte is read once per step whatever the batch.
- `attention`: one query head per program: RoPE on q and on the new k (from fp32 cos/sin tables cast to the
  model dtype, as HF does), the new k/v written into the static cache (by the first head of each KV group),
  online softmax in fp32 over the slots already written (their count read from the device, so the cache's
  length costs nothing) plus the new token from registers. No mask tensor is built per step.
- `advance`: the greedy bookkeeping after the argmax (history, next token, position, counters) in one program.

Rounding follows HF's bf16/fp16 modules op by op (each elementwise op rounds to the model dtype; reductions in
fp32), so greedy tokens match the eager model's. Importing this module imports triton: load it lazily.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

#: Widest K held in one register tile (SmolLM2: 576 and 1536): larger models fall back to the fused torch step.
MAX_K = 2048
#: Vocabulary entries per program of the first argmax stage.
ARGMAX_BLOCK = 2048


@triton.jit
def _grid_dependency(GDC: tl.constexpr):
    """Under programmatic dependent launch (Hopper): wait for the previous kernel, then let the next one launch.
    Everything before this call may only read memory no earlier kernel of the step writes (weights, tables)."""
    if GDC:
        gdc_wait()
        gdc_launch_dependents()


@triton.jit
def _gemv_kernel(
    x_ptr, w_ptr, out_ptr, res_ptr, lnw_ptr, eps, B, N,
    stride_x, stride_out,
    K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PROLOGUE: tl.constexpr, RESIDUAL: tl.constexpr,
    GDC: tl.constexpr,
):  # fmt: skip
    dtype = out_ptr.dtype.element_ty
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_K)
    rmask, kmask = rows < N, cols < K
    w = tl.load(w_ptr + rows[:, None] * K + cols[None, :], mask=rmask[:, None] & kmask[None, :], other=0.0)
    w = w.to(tl.float32)
    if PROLOGUE == 1:
        lnw = tl.load(lnw_ptr + cols, mask=kmask, other=0.0).to(tl.float32)
    else:
        lnw = tl.zeros([BLOCK_K], dtype=tl.float32)
    _grid_dependency(GDC)  # the weight tile above streams in while the previous kernel finishes
    for b in range(B):
        if PROLOGUE == 2:
            gate = tl.load(x_ptr + b * stride_x + cols, mask=kmask, other=0.0).to(tl.float32)
            up = tl.load(x_ptr + b * stride_x + K + cols, mask=kmask, other=0.0).to(tl.float32)
            act = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
            a = (act * up).to(dtype).to(tl.float32)
        else:
            a = tl.load(x_ptr + b * stride_x + cols, mask=kmask, other=0.0).to(tl.float32)
            if PROLOGUE == 1:
                var = tl.sum(a * a, axis=0) / K
                h = (a * (1.0 / tl.sqrt(var + eps))).to(dtype).to(tl.float32)
                a = (lnw * h).to(dtype).to(tl.float32)
        y = tl.sum(w * a[None, :], axis=1).to(dtype)
        if RESIDUAL:
            r = tl.load(res_ptr + b * stride_out + rows, mask=rmask, other=0.0).to(tl.float32)
            y = (r + y.to(tl.float32)).to(dtype)
        tl.store(out_ptr + b * stride_out + rows, y, mask=rmask)


@triton.jit
def _attention_kernel(
    qkv_ptr, k_ptr, v_ptr, out_ptr, cos_ptr, sin_ptr, pos_ptr, write_ptr, mask_ptr,
    stride_qkv, stride_cb, stride_ch, stride_cl, stride_mask, stride_out, scale,
    H: tl.constexpr, KV: tl.constexpr, D: tl.constexpr, BLOCK_L: tl.constexpr, HAS_MASK: tl.constexpr,
    GDC: tl.constexpr,
):  # fmt: skip
    _grid_dependency(GDC)
    dtype = out_ptr.dtype.element_ty
    b, h = tl.program_id(0), tl.program_id(1)
    kvh = h // (H // KV)
    d = tl.arange(0, D)
    half: tl.constexpr = D // 2
    partner = tl.where(d < half, d + half, d - half)
    sign = tl.where(d < half, -1.0, 1.0)
    pos = tl.load(pos_ptr + b)
    write = tl.load(write_ptr)
    cos = tl.load(cos_ptr + pos * D + d).to(tl.float32)
    sin = tl.load(sin_ptr + pos * D + d).to(tl.float32)
    row = qkv_ptr + b * stride_qkv
    q, q_rot = tl.load(row + h * D + d).to(tl.float32), tl.load(row + h * D + partner).to(tl.float32) * sign
    q = ((q * cos).to(dtype).to(tl.float32) + (q_rot * sin).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
    k_off = H * D + kvh * D
    k, k_rot = tl.load(row + k_off + d).to(tl.float32), tl.load(row + k_off + partner).to(tl.float32) * sign
    k = ((k * cos).to(dtype).to(tl.float32) + (k_rot * sin).to(dtype).to(tl.float32)).to(dtype)
    v = tl.load(row + (H + KV) * D + kvh * D + d)
    cache = b * stride_cb + kvh * stride_ch
    owner = (h % (H // KV)) == 0
    tl.store(k_ptr + cache + write * stride_cl + d, k.to(k_ptr.dtype.element_ty), mask=(d < D) & owner)
    tl.store(v_ptr + cache + write * stride_cl + d, v.to(v_ptr.dtype.element_ty), mask=(d < D) & owner)
    k, v = k.to(tl.float32), v.to(tl.float32)
    m_i = tl.full([], -1.0e30, dtype=tl.float32)  # finite: exp(m_i - m_new) stays defined before any slot
    l_i = tl.full([], 0.0, dtype=tl.float32)
    acc = tl.zeros([D], dtype=tl.float32)
    for start in range(0, write, BLOCK_L):
        slots = start + tl.arange(0, BLOCK_L)
        valid = slots < write
        if HAS_MASK:
            valid = valid & (tl.load(mask_ptr + b * stride_mask + slots, mask=valid, other=0) != 0)
        keys = tl.load(k_ptr + cache + slots[:, None] * stride_cl + d[None, :], mask=valid[:, None], other=0.0)
        s = tl.where(valid, tl.sum(keys.to(tl.float32) * q[None, :], axis=1) * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=0))
        p = tl.exp(s - m_new)
        alpha = tl.exp(m_i - m_new)
        values = tl.load(v_ptr + cache + slots[:, None] * stride_cl + d[None, :], mask=valid[:, None], other=0.0)
        acc = acc * alpha + tl.sum(p[:, None] * values.to(tl.float32), axis=0)
        l_i = l_i * alpha + tl.sum(p, axis=0)
        m_i = m_new
    s_new = tl.sum(q * k, axis=0) * scale
    m_new = tl.maximum(m_i, s_new)
    alpha, p_new = tl.exp(m_i - m_new), tl.exp(s_new - m_new)
    acc = acc * alpha + p_new * v
    l_i = l_i * alpha + p_new
    tl.store(out_ptr + b * stride_out + h * D + d, (acc / l_i).to(dtype))


@triton.jit
def _argmax_kernel(logits_ptr, val_ptr, idx_ptr, V, stride_logits, parts, BLOCK: tl.constexpr, GDC: tl.constexpr):
    """Stage 1 of the greedy pick: (max, first index of it) of one block of one row's logits."""
    _grid_dependency(GDC)
    b, part = tl.program_id(0), tl.program_id(1)
    cols = part * BLOCK + tl.arange(0, BLOCK)
    vals = tl.load(logits_ptr + b * stride_logits + cols, mask=cols < V, other=float("-inf")).to(tl.float32)
    best = tl.max(vals, axis=0)
    first = tl.min(tl.where(vals == best, cols, V), axis=0)
    tl.store(val_ptr + b * parts + part, best)
    tl.store(idx_ptr + b * parts + part, first.to(tl.int64))


@triton.jit
def _advance_kernel(
    nxt_ptr, val_ptr, tok_ptr, pos_ptr, hist_ptr, n_ptr, write_ptr, B, stride_hist, parts,
    BLOCK_B: tl.constexpr, BLOCK_P: tl.constexpr, PARTIAL: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    _grid_dependency(GDC)
    rows = tl.arange(0, BLOCK_B)
    live = rows < B
    n = tl.load(n_ptr)
    if PARTIAL:  # stage 2 of the argmax: the largest block maximum, the lowest index among equal ones
        p = tl.arange(0, BLOCK_P)
        where = rows[:, None] * parts + p[None, :]
        ok = live[:, None] & (p[None, :] < parts)
        vals = tl.load(val_ptr + where, mask=ok, other=float("-inf"))
        idx = tl.load(nxt_ptr + where, mask=ok, other=0)
        best = tl.max(vals, axis=1)
        nxt = tl.min(tl.where((vals == best[:, None]) & ok, idx, 2**62), axis=1)
    else:
        nxt = tl.load(nxt_ptr + rows, mask=live, other=0)
    tl.store(hist_ptr + rows * stride_hist + n, nxt, mask=live)
    tl.store(tok_ptr + rows, nxt, mask=live)
    tl.store(pos_ptr + rows, tl.load(pos_ptr + rows, mask=live, other=0) + 1, mask=live)
    tl.store(n_ptr, n + 1)
    tl.store(write_ptr, tl.load(write_ptr) + 1)


def gemv_block_n(n: int, k: int, programs: int = 132) -> int:
    """Rows per program: 8 where that still gives every SM of an H100 (132) a program, else 4; 4 for K > 1024
    (the register tile stays at 8,192 values)."""
    if triton.next_power_of_2(k) > 1024:
        return 4
    return 8 if triton.cdiv(n, 8) >= programs else 4


def gemv(x: Any, weight: Any, out: Any, *, prologue: int = 0, norm: Any = None, eps: float = 0.0,
         residual: bool = False, block_n: int | None = None, pdl: bool = False) -> Any:  # fmt: skip
    """out[b] = weight @ prologue(x[b]) (+ out[b] when `residual`). x [B, K] (or [B, 2K] for prologue 2)."""
    n, k = weight.shape
    block_k = triton.next_power_of_2(k)
    bn = block_n or gemv_block_n(n, k)
    _gemv_kernel[(triton.cdiv(n, bn),)](
        x, weight, out, out, norm if norm is not None else weight, eps, x.shape[0], n,
        x.stride(0), out.stride(0), K=k, BLOCK_N=bn, BLOCK_K=block_k, PROLOGUE=prologue, RESIDUAL=residual,
        GDC=pdl, num_warps=4, **_launch(pdl),
    )  # fmt: skip
    return out


def attention(qkv: Any, keys: Any, values: Any, out: Any, cos: Any, sin: Any, pos: Any, write: Any, mask: Any,
              heads: int, kv_heads: int, head_dim: int, scale: float, block_l: int = 64,
              pdl: bool = False) -> Any:  # fmt: skip
    """out [B, heads*head_dim] = attention of each row's new token; writes its k/v into keys/values[:, :, write]."""
    batch = qkv.shape[0]
    _attention_kernel[(batch, heads)](
        qkv, keys, values, out, cos, sin, pos, write, mask if mask is not None else pos,
        qkv.stride(0), keys.stride(0), keys.stride(1), keys.stride(2), mask.stride(0) if mask is not None else 0,
        out.stride(0), scale, H=heads, KV=kv_heads, D=head_dim, BLOCK_L=block_l, HAS_MASK=mask is not None,
        GDC=pdl, num_warps=4, **_launch(pdl),
    )  # fmt: skip
    return out


def _launch(pdl: bool) -> dict[str, bool]:
    return {"launch_pdl": True} if pdl else {}


def advance(nxt: Any, tok: Any, pos: Any, hist: Any, n: Any, write: Any, pdl: bool = False) -> None:
    """hist[:, n] = tok = nxt; pos += 1; n += 1; write += 1 — all on the device, one launch. nxt [B]: the picks."""
    batch = nxt.shape[0]
    _advance_kernel[(1,)](nxt, nxt, tok, pos, hist, n, write, batch, hist.stride(0), 1,
                          BLOCK_B=triton.next_power_of_2(batch), BLOCK_P=1, PARTIAL=False, GDC=pdl, num_warps=1,
                          **_launch(pdl))  # fmt: skip


def argmax_advance(logits: Any, tok: Any, pos: Any, hist: Any, n: Any, write: Any, pdl: bool = False) -> None:
    """The greedy pick (first index of the row maximum, as torch.argmax) and `advance`, in two launches: block
    maxima over many programs, then the pick among them in the bookkeeping kernel (torch's single-pass argmax
    over 49,152 logits takes ~14 us at batch 1)."""
    import torch

    batch, vocab = logits.shape
    parts = triton.cdiv(vocab, ARGMAX_BLOCK)
    vals = torch.empty((batch, parts), dtype=torch.float32, device=logits.device)
    idx = torch.empty((batch, parts), dtype=torch.int64, device=logits.device)
    _argmax_kernel[(batch, parts)](logits, vals, idx, vocab, logits.stride(0), parts, BLOCK=ARGMAX_BLOCK, GDC=pdl,
                                   num_warps=4, **_launch(pdl))  # fmt: skip
    _advance_kernel[(1,)](idx, vals, tok, pos, hist, n, write, batch, hist.stride(0), parts,
                          BLOCK_B=triton.next_power_of_2(batch), BLOCK_P=triton.next_power_of_2(parts),
                          PARTIAL=True, GDC=pdl, num_warps=1, **_launch(pdl))  # fmt: skip
