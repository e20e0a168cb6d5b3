"""Tile and split-K choice for the small-M Triton GEMMs (cuda_gemm.py); plain Python so CPU CI tests it.

The rule: at small M a GEMM is latency-bound, so the grid should cover the chip. Take the widest N-tile that
still gives at least half a wave of thread blocks, and, where the caller can add partial sums (split=True),
split K until the grid fills the multiprocessors. K must divide evenly into splits x block_k (the kernel does
not mask K); shapes that do not fit return None and stay on cuBLAS.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLIT_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)


@dataclass(frozen=True)
class GemmConfig:
    block_m: int
    block_n: int
    block_k: int
    splits: int = 1
    warps: int = 4
    stages: int = 3


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def choose(m: int, n: int, k: int, sms: int, split: bool = False) -> GemmConfig | None:
    """The tiles for an [m, k] x [k, n] product on a device with `sms` multiprocessors, or None (use cuBLAS)."""
    block_k = next((b for b in (64, 32, 16) if k % b == 0), None)
    if block_k is None:
        return None
    block_m = 64 if m <= 256 else 128
    m_tiles = _cdiv(m, block_m)
    block_n = 32
    for candidate in (128, 64):
        if m_tiles * _cdiv(n, candidate) * 2 >= sms:
            block_n = candidate
            break
    tiles = m_tiles * _cdiv(n, block_n)
    splits = 1
    if split:
        for s in SPLIT_CHOICES:
            if k % (s * block_k):
                continue
            splits = s
            if tiles * s >= sms:
                break
    return GemmConfig(block_m, block_n, block_k, splits)
