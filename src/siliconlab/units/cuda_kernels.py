"""Triton kernels for the fused encoder: everything between the GEMMs, one kernel per stage.

- embed_ln: word-embedding gather + (position + token-type) add + LayerNorm
- add_ln: GEMM output + bias + residual -> LayerNorm (the residual add never round-trips memory)
- bias_gelu: bias + exact (erf) GELU
- quant_rows: per-row fp8 quantization (for inputs no kernel of ours produces)
- pool: masked mean over tokens + L2 normalisation, fp32 out

Each LayerNorm/GELU kernel can also emit its output as fp8 with a per-row scale (QUANT), so the FP8 GEMM
that consumes it needs no separate quantization pass. Rows are whole in one program (hidden sizes <= 8192).
Only imported where triton exists (CUDA machines); FastBert falls back to plain torch ops elsewhere.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

E4M3_MAX = tl.constexpr(448.0)
MIN_AMAX = tl.constexpr(1e-12)


#: Programmatic dependent launch (Hopper+): each kernel is launched before its predecessor finishes, waits for
#: it (griddepcontrol.wait) before touching memory, and lets its own successor launch at once. Inside a CUDA
#: graph this hides most of the launch gap between consecutive kernels. Switched on per device by FastBert.
PDL = False


@triton.jit
def grid_dependency(GDC: tl.constexpr):
    if GDC:
        gdc_wait()
        gdc_launch_dependents()


@triton.jit
def _layer_norm(x, mask, w_ptr, b_ptr, cols, n, eps):
    mean = tl.sum(x, axis=0) / n
    xc = tl.where(mask, x - mean, 0.0)
    var = tl.sum(xc * xc, axis=0) / n
    rstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    return xc * rstd * w + b


@triton.jit
def _store_row(y, mask, row, cols, n, out_ptr, q_ptr, s_ptr, QUANT: tl.constexpr, STORE: tl.constexpr):
    if STORE:
        tl.store(out_ptr + row * n + cols, y.to(out_ptr.dtype.element_ty), mask=mask)
    if QUANT:
        amax = tl.max(tl.where(mask, tl.abs(y), 0.0), axis=0)
        scale = tl.maximum(amax, MIN_AMAX) / E4M3_MAX
        q = tl.clamp(y / scale, -E4M3_MAX, E4M3_MAX)
        tl.store(q_ptr + row * n + cols, q.to(q_ptr.dtype.element_ty), mask=mask)
        tl.store(s_ptr + row, scale)


@triton.jit
def _embed_ln_kernel(
    ids_ptr, word_ptr, pos_ptr, w_ptr, b_ptr, out_ptr, q_ptr, s_ptr, seq, n, eps,
    BLOCK: tl.constexpr, QUANT: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    grid_dependency(GDC)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    token = tl.load(ids_ptr + row)
    position = row % seq
    x = tl.load(word_ptr + token * n + cols, mask=mask, other=0.0).to(tl.float32)
    x += tl.load(pos_ptr + position * n + cols, mask=mask, other=0.0).to(tl.float32)
    y = _layer_norm(x, mask, w_ptr, b_ptr, cols, n, eps)
    _store_row(y, mask, row, cols, n, out_ptr, q_ptr, s_ptr, QUANT, True)


@triton.jit
def _add_ln_kernel(
    x_ptr, bias_ptr, res_ptr, w_ptr, b_ptr, out_ptr, q_ptr, s_ptr, rows, n, eps,
    BLOCK: tl.constexpr, QUANT: tl.constexpr, SPLITS: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    grid_dependency(GDC)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(x_ptr + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    for split in tl.static_range(1, SPLITS):  # split-K partial products, summed here instead of in the GEMM
        x += tl.load(x_ptr + (split * rows + row) * n + cols, mask=mask, other=0.0).to(tl.float32)
    x += tl.load(bias_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    x += tl.load(res_ptr + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    y = _layer_norm(x, mask, w_ptr, b_ptr, cols, n, eps)
    _store_row(y, mask, row, cols, n, out_ptr, q_ptr, s_ptr, QUANT, True)


@triton.jit
def _bias_gelu_kernel(
    x_ptr, bias_ptr, out_ptr, q_ptr, s_ptr, n,
    BLOCK: tl.constexpr, QUANT: tl.constexpr, STORE: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    grid_dependency(GDC)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(x_ptr + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    x += tl.load(bias_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    y = 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
    _store_row(y, mask, row, cols, n, out_ptr, q_ptr, s_ptr, QUANT, STORE)


@triton.jit
def _quant_rows_kernel(x_ptr, q_ptr, s_ptr, n, BLOCK: tl.constexpr, GDC: tl.constexpr):
    grid_dependency(GDC)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(x_ptr + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    amax = tl.max(tl.where(mask, tl.abs(x), 0.0), axis=0)
    scale = tl.maximum(amax, MIN_AMAX) / E4M3_MAX
    q = tl.clamp(x / scale, -E4M3_MAX, E4M3_MAX)
    tl.store(q_ptr + row * n + cols, q.to(q_ptr.dtype.element_ty), mask=mask)
    tl.store(s_ptr + row, scale)


@triton.jit
def _pool_kernel(x_ptr, mask_ptr, out_ptr, seq, n, BLOCK_S: tl.constexpr, BLOCK: tl.constexpr, GDC: tl.constexpr):
    grid_dependency(GDC)
    # one program per sequence; a 2-D accumulator keeps the loop free of cross-warp reductions (one at the end)
    b = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    cmask = cols < n
    acc = tl.zeros([BLOCK_S, BLOCK], dtype=tl.float32)
    count = tl.zeros([BLOCK_S], dtype=tl.float32)
    for start in range(0, seq, BLOCK_S):
        rows = start + tl.arange(0, BLOCK_S)
        rmask = rows < seq
        m = tl.load(mask_ptr + b * seq + rows, mask=rmask, other=0).to(tl.float32)
        ptrs = x_ptr + (b * seq + rows)[:, None] * n + cols[None, :]
        acc += tl.load(ptrs, mask=rmask[:, None] & cmask[None, :], other=0.0).to(tl.float32) * m[:, None]
        count += m
    mean = tl.sum(acc, axis=0) / tl.maximum(tl.sum(count, axis=0), 1e-9)
    norm = tl.sqrt(tl.sum(mean * mean, axis=0))
    tl.store(out_ptr + b * n + cols, mean / tl.maximum(norm, 1e-12), mask=cmask)


@triton.jit
def _prefetch_l2_kernel(ptr, n_lines, LINES: tl.constexpr, LINE_ELEMENTS: tl.constexpr):
    lines = tl.program_id(0) * LINES + tl.arange(0, LINES)
    lines = tl.minimum(lines, n_lines - 1)
    addresses = ptr + lines.to(tl.int64) * LINE_ELEMENTS
    tl.inline_asm_elementwise(
        "prefetch.global.L2::evict_last [$1];\n mov.u32 $0, 0;", "=r,l", [addresses],
        dtype=tl.int32, is_pure=False, pack=1,
    )  # fmt: skip


def prefetch_l2(flat: torch.Tensor, lines_per_program: int = 1024) -> None:
    """Ask L2 to fetch a contiguous tensor (fire and forget: the program exits without waiting for the data).

    Run on a side stream a layer ahead, it turns the next layer's GEMMs' weight reads into L2 hits: at batch 1
    they are latency-bound reads from HBM otherwise (BERT-base: 14 MB of bf16 weights per layer, L2 50 MB).
    """
    line_elements = 128 // flat.element_size()
    n_lines = triton.cdiv(flat.numel(), line_elements)
    grid = (triton.cdiv(n_lines, lines_per_program),)
    _prefetch_l2_kernel[grid](flat, n_lines, LINES=lines_per_program, LINE_ELEMENTS=line_elements, num_warps=4)


def _pdl() -> dict[str, bool]:
    return {"GDC": PDL, "launch_pdl": PDL}


def _block(n: int) -> int:
    return triton.next_power_of_2(n)


def _warps(block: int) -> int:
    return 8 if block >= 2048 else 4


def _outputs(rows: int, n: int, dtype: torch.dtype, quant: bool, device: torch.device):
    out = torch.empty((rows, n), dtype=dtype, device=device)
    if not quant:
        return out, out, out  # q/s pointers unused (QUANT is a compile-time constant)
    q = torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=device)
    s = torch.empty((rows, 1), dtype=torch.float32, device=device)
    return out, q, s


def embed_ln(ids, word, pos_type, w, b, eps, seq, dtype, quant=False):
    rows, n = ids.numel(), word.shape[1]
    out, q, s = _outputs(rows, n, dtype, quant, word.device)
    block = _block(n)
    _embed_ln_kernel[(rows,)](ids, word, pos_type, w, b, out, q, s, seq, n, eps, BLOCK=block, QUANT=quant,
                              num_warps=_warps(block), **_pdl())  # fmt: skip
    return (out, q, s) if quant else (out, None, None)


def add_ln(x, bias, residual, w, b, eps, dtype, quant=False):
    """x is [M, N], or [splits, M, N] partial sums from a split-K GEMM (summed in the kernel)."""
    splits = x.shape[0] if x.dim() == 3 else 1
    rows, n = x.shape[-2:]
    out, q, s = _outputs(rows, n, dtype, quant, x.device)
    block = _block(n)
    _add_ln_kernel[(rows,)](x, bias, residual, w, b, out, q, s, rows, n, eps, BLOCK=block, QUANT=quant,
                            SPLITS=splits, num_warps=_warps(block), **_pdl())  # fmt: skip
    return (out, q, s) if quant else (out, None, None)


def bias_gelu(x, bias, dtype, quant=False):
    """With quant, only the fp8 copy and its scales are written (the FFN2 GEMM reads nothing else)."""
    rows, n = x.shape
    out, q, s = _outputs(rows, n, dtype, False, x.device) if not quant else (None, *quant_buffers(rows, n, x.device))
    if quant:
        out = torch.empty((rows, 1), dtype=dtype, device=x.device)  # placeholder: carries the dtype, never written
    block = _block(n)
    _bias_gelu_kernel[(rows,)](x, bias, out, q, s, n, BLOCK=block, QUANT=quant, STORE=not quant,
                               num_warps=_warps(block), **_pdl())  # fmt: skip
    return (out, q, s) if quant else (out, None, None)


def quant_buffers(rows: int, n: int, device: torch.device):
    return (
        torch.empty((rows, n), dtype=torch.float8_e4m3fn, device=device),
        torch.empty((rows, 1), dtype=torch.float32, device=device),
    )


def quant_rows(x):
    rows, n = x.shape
    q, s = quant_buffers(rows, n, x.device)
    block = _block(n)
    _quant_rows_kernel[(rows,)](x, q, s, n, BLOCK=block, num_warps=_warps(block), **_pdl())
    return q, s


def pool(states, mask):
    batch, seq, n = states.shape
    out = torch.empty((batch, n), dtype=torch.float32, device=states.device)
    block = _block(n)
    block_s = min(triton.next_power_of_2(seq), max(1, 16384 // block))
    _pool_kernel[(batch,)](states, mask, out, seq, n, BLOCK_S=block_s, BLOCK=block, num_warps=8, **_pdl())
    return out
