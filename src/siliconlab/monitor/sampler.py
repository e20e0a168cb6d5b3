"""One sensor interface and one background sampler, so energy counters and machine-load readings are polled alike.

A `Source` answers `available() -> (ok, reason)` and `read() -> {reading: value}`; the unit is the suffix of
the reading's name (`_pct`, `_mb`, `_j`, `_w`, `_mhz`, `_cores`; load averages are runnable tasks and carry
none). A reading ending in `_j` is a cumulative energy counter: its summary adds `total` (last - first).

The `Sampler` polls its sources every `interval` seconds in a daemon thread. Its cost is bounded: samples go
into a ring of `capacity` entries while the summary is kept as running count/sum/min/max per reading (so a
long run keeps a whole-run summary in constant memory), and each sample records how long the sampler itself
took, so its overhead can be reported next to the figures it may have disturbed. A source that is missing is
reported unavailable with its reason; one that raises is retried, and set aside after `max_failures`
consecutive errors with the last error as its reason. The sampler never dies because of a sensor.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Source(ABC):
    """A sensor. Subclasses set `name` and implement `available` and `read`; `open`/`close` are optional."""

    name: str = "source"

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(True, '') when read() can work on this machine; else (False, why) — never raises."""

    @abstractmethod
    def read(self) -> dict[str, float]:
        """Current readings. A delta-based source may return {} on its first call (no interval yet)."""

    def open(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Start whatever the source needs (a baseline, a subprocess); called once before the first read()."""

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Release what open() started; called once after the last read()."""


@dataclass
class Sample:
    """One poll: when (perf_counter seconds), what was read (`source.reading` keys), and what it cost: wall
    time, and CPU time of the polling thread (on a busy machine the wall time is mostly waiting for a core)."""

    t: float
    values: dict[str, float]
    cost_s: float
    cpu_s: float


@dataclass
class _Stat:
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    first: float = 0.0
    last: float = 0.0

    def add(self, value: float) -> None:
        if self.count == 0:
            self.first = value
        self.count += 1
        self.total += value
        self.low, self.high, self.last = min(self.low, value), max(self.high, value), value


@dataclass
class _Health:
    failures: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass
class Sampler:
    """`with Sampler(sources, interval=0.2) as s: work()` then `s.summary()`; or start()/stop() explicitly.

    A sample is taken at start, every `interval` seconds, and at stop, so cumulative counters cover the whole
    block. An overrun (a slow source) does not queue catch-up polls: the next poll is one interval later.
    """

    sources: Iterable[Source]
    interval: float = 0.2
    capacity: int = 1000
    max_failures: int = 3
    samples: deque[Sample] = field(init=False)
    unavailable: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.capacity <= 0:
            raise ValueError("Sampler needs interval > 0 and capacity > 0")
        self.sources = list(self.sources)
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"Sampler sources need distinct names: {names}")
        self.samples = deque(maxlen=self.capacity)
        self._active: list[Source] = []
        self._opened: list[Source] = []  # closed at stop, even those set aside after failures
        self._health: dict[str, _Health] = {}
        self._stats: dict[str, _Stat] = {}
        self._cost, self._cpu = _Stat(), _Stat()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started = self._stopped = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Sampler:
        if self._thread is not None:
            raise RuntimeError("Sampler already started")
        for source in self.sources:
            self._open(source)
        self._started = time.perf_counter()
        self._poll()
        self._thread = threading.Thread(target=self._loop, name="siliconlab-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._poll()
        self._stopped = time.perf_counter()
        for source in self._opened:
            try:
                source.close()
            except Exception as exc:  # a sensor's cleanup must not hide the caller's result
                self._health[source.name].last_error = f"close failed: {exc}"

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open(self, source: Source) -> None:
        try:
            ok, reason = source.available()
            if ok:
                source.open()
        except Exception as exc:  # available() must not raise, but a broken sensor still must not stop us
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self._active.append(source)
            self._opened.append(source)
            self._health[source.name] = _Health()
        else:
            self.unavailable[source.name] = reason

    def _loop(self) -> None:
        deadline = time.perf_counter() + self.interval
        while not self._stop.wait(max(0.0, deadline - time.perf_counter())):
            self._poll()
            deadline += self.interval
            if deadline < time.perf_counter():  # overran: skip the missed polls rather than catch up
                deadline = time.perf_counter() + self.interval

    # --- one poll --------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        begin, begin_cpu = time.perf_counter(), time.thread_time()
        values: dict[str, float] = {}
        for source in list(self._active):
            health = self._health[source.name]
            try:
                readings = source.read()
            except Exception as exc:  # any sensor error is recorded, never raised
                health.failures += 1
                health.errors += 1
                health.last_error = f"{type(exc).__name__}: {exc}"
                if health.failures >= self.max_failures:
                    self._active.remove(source)
                    self.unavailable[source.name] = f"read failed {health.failures} times in a row: {health.last_error}"
                continue
            health.failures = 0
            values |= {f"{source.name}.{key}": float(value) for key, value in readings.items()}
        cost, cpu = time.perf_counter() - begin, time.thread_time() - begin_cpu
        with self._lock:
            self.samples.append(Sample(begin, values, cost, cpu))
            self._cost.add(cost)
            self._cpu.add(cpu)
            for key, value in values.items():
                self._stats.setdefault(key, _Stat()).add(value)

    # --- results ---------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Whole-run figures: per reading mean/min/max/last (+ total for `_j` counters), the sampler's own cost
        per poll (wall `cost_ms`, CPU `cpu_ms`), and every source that was unavailable or failed, with its reason."""
        with self._lock:
            readings = {}
            for key, stat in sorted(self._stats.items()):
                entry = {"mean": stat.total / stat.count, "min": stat.low, "max": stat.high, "last": stat.last}
                if key.endswith("_j"):
                    entry["total"] = stat.last - stat.first
                readings[key] = entry
            cost, cpu = self._cost, self._cpu
            end = self._stopped or time.perf_counter()
            return {
                "interval_s": self.interval,
                "seconds": end - self._started if self._started else 0.0,
                "samples": cost.count,
                "kept": len(self.samples),
                "cost_ms": _mean_max_ms(cost),
                "cpu_ms": _mean_max_ms(cpu),
                "readings": readings,
                "unavailable": dict(self.unavailable),
                "errors": {name: h.last_error for name, h in self._health.items() if h.errors or h.last_error},
            }


def _mean_max_ms(stat: _Stat) -> dict[str, float]:
    if not stat.count:
        return {"mean": 0.0, "max": 0.0}
    return {"mean": stat.total / stat.count * 1e3, "max": stat.high * 1e3}
