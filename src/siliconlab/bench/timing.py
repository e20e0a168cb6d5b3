"""How a unit is timed: warm-up excluded, then measure until both a minimum count and a minimum time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TimingConfig:
    warmup_iters: int = 3
    warmup_seconds: float = 0.5
    min_iters: int = 30
    min_seconds: float = 3.0
    max_seconds: float = 20.0  # slow rows (big batch x long sequence) stop here, with at least 3 samples

    @classmethod
    def quick(cls) -> TimingConfig:
        return cls(warmup_iters=2, warmup_seconds=0.1, min_iters=10, min_seconds=0.5, max_seconds=10.0)

    @classmethod
    def generation(cls, quick: bool) -> TimingConfig:
        """Generation rows: an iteration is one run's time to first token (TTFT rows) or one decode step
        (decode rows), so 7 (quick: 3) iterations are 7 TTFT runs or one whole decode run; warm-up is one run.
        The generation bench's repeats before the loops were merged."""
        return cls(warmup_iters=1, warmup_seconds=0.0, min_iters=3 if quick else 7, min_seconds=0.0,
                   max_seconds=20.0 if quick else 60.0)  # fmt: skip

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def measure(
    step: Callable[[], object],
    sync: Callable[[], None],
    config: TimingConfig,
    on_measure_start: Callable[[], None] | None = None,
) -> np.ndarray:
    """Per-iteration wall times in seconds, warm-up excluded.

    `sync` blocks until queued device work is done (a no-op on the CPU; torch.cuda.synchronize on NVIDIA),
    so asynchronous engines are timed to completion. `on_measure_start` starts energy counters after warm-up.
    """
    started = time.perf_counter()
    done = 0
    while done < config.warmup_iters or time.perf_counter() - started < config.warmup_seconds:
        step()
        sync()
        done += 1
    samples: list[float] = []
    if on_measure_start:
        on_measure_start()
    started = time.perf_counter()
    while True:
        begin = time.perf_counter()
        step()
        sync()
        samples.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - started
        if len(samples) >= config.min_iters and elapsed >= config.min_seconds:
            break
        if elapsed >= config.max_seconds and len(samples) >= 3:
            break
    return np.asarray(samples)
