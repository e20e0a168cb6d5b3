"""Was the machine busy while we timed? The bench's view of monitor/'s load sources.

A shared 2-core VM can lose half its CPU to a neighbour; a unit timed then is slower for reasons that are not
its own, and a baseline whose threads spin-wait collapses far more than the others, inflating every ratio.
The bench therefore records the load before timing and during each workload, and flags rows measured while
other processes took a real share of the CPU or the hypervisor stole time. A flagged row is reported, never
picked as "best", and its speedup is not a headline.
"""

from __future__ import annotations

import os
import time
from typing import Any

#: Flag a workload when, on average while it was timed, processes outside the bench used more than this many
#: cores, or the hypervisor stole more than this share of CPU time.
OTHER_CORES_LIMIT = 0.25
STEAL_PCT_LIMIT = 5.0
INTERVAL_S = 1.0  # the process scan costs ~6 ms of CPU a sample: 0.6 % of one core at 1 Hz, beside the units
#: A speedup whose round-by-round range (max/min) is wider than this did not hold still: printed as unstable.
UNSTABLE_RANGE = 1.5


def unstable(row: dict[str, Any]) -> bool:
    """The row's round-by-round speedups spread wider than UNSTABLE_RANGE."""
    rounds = row.get("speedup_rounds") or {}
    low, high = rounds.get("min"), rounds.get("max")
    return bool(low and high and high / low > UNSTABLE_RANGE)


def flagged(row: dict[str, Any]) -> bool:
    """Measured under contention, or with an unstable speedup: reported, never a headline or "best"."""
    return bool((row.get("contention") or {}).get("flagged")) or unstable(row)


class ContentionWatch:
    """A background sampler of load average, /proc/stat shares and other processes' CPU, for one bench run."""

    def __init__(self, interval: float = INTERVAL_S, hardware: bool = False):
        """`hardware` (bench --monitor): the same Sampler also polls clocks, memory, energy and GPUs."""
        from siliconlab.monitor.load import LoadAverage, ProcStat
        from siliconlab.monitor.procs import OtherProcesses
        from siliconlab.monitor.sampler import Sampler
        from siliconlab.monitor.sources import hardware_sources

        own = os.getpid()  # the bench; its worker processes are descendants and count as its own
        sources = [LoadAverage(), ProcStat(), OtherProcesses(lambda: [own])] + (hardware_sources() if hardware else [])
        self.sampler = Sampler(sources, interval=interval, capacity=100_000)
        self.before: dict[str, Any] = {}

    def start(self) -> ContentionWatch:
        """Start sampling and take the 'before' picture over two seconds, before any unit runs."""
        self.sampler.start()
        begin = time.perf_counter()
        time.sleep(2.0)
        self.before = self.window(begin, time.perf_counter())
        return self

    def stop(self) -> dict[str, Any]:
        self.sampler.stop()
        summary = self.sampler.summary()
        return {"before": self.before, "sampler": {k: summary[k] for k in ("interval_s", "samples", "cpu_ms",
                                                                               "unavailable")}}  # fmt: skip

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Mean/max of the contention readings between two perf_counter times, and whether to flag them."""
        samples = [s for s in list(self.sampler.samples) if start <= s.t <= end]
        figures: dict[str, Any] = {"samples": len(samples)}
        for key, name in (("procs.other_cores", "other_cores"), ("cpu.steal_pct", "steal_pct"),
                          ("loadavg.load_1m", "load_1m")):  # fmt: skip
            values = [s.values[key] for s in samples if key in s.values]
            if values:
                figures[name] = {"mean": round(sum(values) / len(values), 3), "max": round(max(values), 3)}
        reasons = []
        other = figures.get("other_cores", {}).get("mean")
        if other is not None and other > OTHER_CORES_LIMIT:
            reasons.append(f"other processes used {other:.2f} cores")
        steal = figures.get("steal_pct", {}).get("mean")
        if steal is not None and steal > STEAL_PCT_LIMIT:
            reasons.append(f"the hypervisor stole {steal:.1f} % of CPU time")
        figures["flagged"] = bool(reasons)
        figures["reasons"] = reasons
        return figures
