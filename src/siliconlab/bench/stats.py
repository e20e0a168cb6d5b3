"""Summary statistics of latency samples, with a distribution-free confidence interval for the median."""

from __future__ import annotations

import math

import numpy as np


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """1-based order-statistic ranks (j, k) with P(x_(j) <= median <= x_(k)) >= confidence.

    Exact binomial(n, 1/2) for any n: no normality assumption, which latency samples never satisfy.
    """
    if n < 1:
        raise ValueError("no samples")
    alpha = 1.0 - confidence
    # largest j with P(Binom(n, .5) < j) <= alpha/2, then k = n + 1 - j by symmetry
    cumulative = 0.0
    j = 0
    log_half_n = -n * math.log(2.0)
    for i in range(n + 1):
        term = math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
        if cumulative + term > alpha / 2:
            break
        cumulative += term
        j = i + 1  # P(X <= i) <= alpha/2, so rank i+1 still leaves alpha/2 below
    j = max(j, 1)
    return j, n + 1 - j


def summarize_ms(samples_s: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no samples")
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    ordered = np.sort(ms)
    low_rank, high_rank = median_ci_ranks(ms.size, confidence)
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "std": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "min": float(ms.min()),
        "max": float(ms.max()),
        "p50_ci_low": float(ordered[low_rank - 1]),
        "p50_ci_high": float(ordered[high_rank - 1]),
    }
