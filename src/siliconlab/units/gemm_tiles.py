"""Tile and split-K choice for the small-M Triton GEMMs (cuda_gemm.py); plain Python so CPU CI tests it.

The rule: at small M a GEMM is latency-bound, so the grid should cover the chip. Take the widest N-tile that
still gives at least half a wave of thread blocks, and, where the caller can add partial sums (split=True),
split K until the grid fills the multiprocessors. K must divide evenly into splits x block_k (the kernel does
not mask K); shapes that do not fit return None and stay on cuBLAS.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLIT_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)
#: A split-K slice this deep keeps each thread block's loop a few tiles long (H100 sweep, NOTES.md).
K_PER_SPLIT = 384


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


def choose(m: int, n: int, k: int, sms: int, split: bool = False) -> GemmConfig | None:
    """The tiles for an [m, k] x [k, n] product on a device with `sms` multiprocessors, or None (use cuBLAS)."""
    block_k = next((b for b in (128, 64, 32, 16) if k % b == 0), None)
    if block_k is None:
        return None
    block_m = 64 if m <= 256 else 128
    m_tiles = _cdiv(m, block_m)
    if split:
        for s in SPLIT_CHOICES:
            if k % s == 0 and (k // s) % 16 == 0 and k // s <= K_PER_SPLIT:
                bk = next(b for b in (128, 64, 32, 16) if (k // s) % b == 0)
                return GemmConfig(block_m, 32, bk, s)
        return GemmConfig(block_m, 32, block_k, 1)
    block_n = 64 if m_tiles * _cdiv(n, 64) * 2 >= sms else 32
    return GemmConfig(block_m, block_n, block_k)
