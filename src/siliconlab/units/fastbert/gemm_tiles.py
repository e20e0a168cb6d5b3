"""Tile and split-K choice for the small-M Triton GEMMs (kernels/gemm.py); plain Python so CPU CI tests it.

The rule: at small M a GEMM is latency-bound, so the grid should cover the chip. Take the widest N-tile that
still gives at least half a wave of thread blocks, and, where the caller can add partial sums (split=True),
split K until the grid fills the multiprocessors. K must divide evenly into splits x block_k (the kernel does
not mask K); shapes that do not fit return None and stay on cuBLAS.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLIT_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)
#: Split K until the grid holds this share of the multiprocessors (H100 sweep, NOTES.md: 96 of 132 won for
#: both BERT-base projections; a full wave or more lost to the extra partial sums).
GRID_FILL = 0.7


@dataclass(frozen=True)
class GemmConfig:
    block_m: int
    block_n: int
    block_k: int
    splits: int = 1
    warps: int = 4
    stages: int = 4


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _block_k(k: int) -> int | None:
    return next((b for b in (128, 64, 32, 16) if k % b == 0), None)


def choose(m: int, n: int, k: int, sms: int, split: bool = False) -> GemmConfig | None:
    """The tiles for an [m, k] x [k, n] product on a device with `sms` multiprocessors, or None (use cuBLAS)."""
    if _block_k(k) is None:
        return None
    block_m = 64 if m <= 256 else 128
    m_tiles = _cdiv(m, block_m)
    splits = 1
    if split:
        block_n = 64 if k >= 2048 else 32
        tiles = m_tiles * _cdiv(n, block_n)
        for s in SPLIT_CHOICES:
            if k % s or _block_k(k // s) is None:
                continue
            splits = s
            if tiles * s >= GRID_FILL * sms:
                break
    else:
        block_n = 64 if m_tiles * _cdiv(n, 64) * 2 >= sms else 32
    block_k = _block_k(k // splits)
    assert block_k is not None  # k has a block size, and k // splits keeps it (splits divide k into whole blocks)
    iterations = k // splits // block_k
    return GemmConfig(block_m, block_n, block_k, splits, stages=max(2, min(4, iterations)))
