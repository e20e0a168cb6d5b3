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
def prefetch_l2(addresses):
    """Ask L2 for these lines and go on (no register waits for the data): a GEMM launched early under PDL
    fetches its weights, which no earlier kernel writes, while its predecessor still runs."""
    tl.inline_asm_elementwise(
        "prefetch.global.L2 [$1];\n mov.u32 $0, 0;", "=r,l", [addresses], dtype=tl.int32, is_pure=False, pack=1
    )


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
    if QUANT:  # one division per row, a multiply per element (these kernels are ALU-bound at large M)
        amax = tl.maximum(tl.max(tl.where(mask, tl.abs(y), 0.0), axis=0), MIN_AMAX)
        q = tl.clamp(y * (E4M3_MAX / amax), -E4M3_MAX, E4M3_MAX)
        tl.store(q_ptr + row * n + cols, q.to(q_ptr.dtype.element_ty), mask=mask)
        tl.store(s_ptr + row, amax / E4M3_MAX)


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
def _tanh_approx(x):
    return tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=f,f", [x], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _bias_gelu_kernel(
    x_ptr, bias_ptr, out_ptr, q_ptr, s_ptr, n,
    BLOCK: tl.constexpr, QUANT: tl.constexpr, STORE: tl.constexpr, GDC: tl.constexpr, FAST: tl.constexpr,
):  # fmt: skip
    grid_dependency(GDC)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    x = tl.load(x_ptr + row * n + cols, mask=mask, other=0.0).to(tl.float32)
    x += tl.load(bias_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    if FAST:  # tanh-form GELU on the special-function unit, as cuBLASLt's epilogue computes it
        y = 0.5 * x * (1.0 + _tanh_approx(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    else:
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
def _pool_partial_kernel(
    x_ptr, mask_ptr, part_ptr, seq, n, chunks, ROWS: tl.constexpr, BLOCK: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    # stage 1 of the pooling: masked sums over ROWS tokens each, spread over (batch x chunks) programs
    grid_dependency(GDC)
    b = tl.program_id(0)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    rows = chunk * ROWS + tl.arange(0, ROWS)
    rmask = rows < seq
    cmask = cols < n
    m = tl.load(mask_ptr + b * seq + rows, mask=rmask, other=0).to(tl.float32)
    x = tl.load(x_ptr + (b * seq + rows)[:, None] * n + cols[None, :], mask=rmask[:, None] & cmask[None, :], other=0.0)
    tl.store(part_ptr + (b * chunks + chunk) * n + cols, tl.sum(x.to(tl.float32) * m[:, None], axis=0), mask=cmask)


@triton.jit
def _pool_finish_kernel(
    part_ptr, mask_ptr, out_ptr, seq, n, chunks,
    BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK: tl.constexpr, GDC: tl.constexpr,
):  # fmt: skip
    # stage 2: add the chunks, divide by the token count, L2-normalise
    grid_dependency(GDC)
    b = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    cmask = cols < n
    c = tl.arange(0, BLOCK_C)
    part_ptrs = part_ptr + (b * chunks + c)[:, None] * n + cols[None, :]
    parts = tl.load(part_ptrs, mask=(c < chunks)[:, None] & cmask[None, :], other=0.0)
    count = 0.0
    for start in range(0, seq, BLOCK_S):
        rows = start + tl.arange(0, BLOCK_S)
        count += tl.sum(tl.load(mask_ptr + b * seq + rows, mask=rows < seq, other=0).to(tl.float32), axis=0)
    mean = tl.sum(parts, axis=0) / tl.maximum(count, 1e-9)
    norm = tl.sqrt(tl.sum(mean * mean, axis=0))
    tl.store(out_ptr + b * n + cols, mean / tl.maximum(norm, 1e-12), mask=cmask)


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


def bias_gelu(x, bias, dtype, quant=False, fast=None, warps=None):
    """With quant, only the fp8 copy and its scales are written (the FFN2 GEMM reads nothing else).

    The fp8 path (quant) uses the tanh-form GELU on the special-function unit: at B64 S128 this pass is bound
    by ALU instructions (25M erf per layer), and e4m3's 3 mantissa bits are far coarser than the difference.
    """
    fast = quant if fast is None else fast
    rows, n = x.shape
    out, q, s = _outputs(rows, n, dtype, False, x.device) if not quant else (None, *quant_buffers(rows, n, x.device))
    if quant:
        out = torch.empty((rows, 1), dtype=dtype, device=x.device)  # placeholder: carries the dtype, never written
    block = _block(n)
    _bias_gelu_kernel[(rows,)](x, bias, out, q, s, n, BLOCK=block, QUANT=quant, STORE=not quant, FAST=fast,
                               num_warps=warps or _warps(block), **_pdl())  # fmt: skip
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
    """Masked mean over tokens + L2 normalisation, fp32: partial sums over 16-token chunks, then one finish."""
    batch, seq, n = states.shape
    rows = 16
    chunks = triton.cdiv(seq, rows)
    block = _block(n)
    parts = torch.empty((batch, chunks, n), dtype=torch.float32, device=states.device)
    out = torch.empty((batch, n), dtype=torch.float32, device=states.device)
    _pool_partial_kernel[(batch, chunks)](states, mask, parts, seq, n, chunks, ROWS=rows, BLOCK=block, num_warps=4,
                                          **_pdl())  # fmt: skip
    block_c, block_s = triton.next_power_of_2(chunks), min(triton.next_power_of_2(seq), 1024)
    _pool_finish_kernel[(batch,)](parts, mask, out, seq, n, chunks, BLOCK_C=block_c, BLOCK_S=block_s, BLOCK=block,
                                  num_warps=4, **_pdl())  # fmt: skip
    return out
