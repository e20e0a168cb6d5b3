"""Machine-load sources: is anything else competing with the benchmark for this machine's CPUs?

On a shared VM a timing is only as good as the quiet around it. These sources say how busy the machine was
while a figure was taken: load average, CPU busy/steal/iowait from /proc/stat deltas (steal is the share of
time the hypervisor gave our vCPUs to someone else: the contention signal a guest cannot see any other way),
per-core utilisation, memory and swap, the CPU used by processes *outside* a given set of pids (the bench
passes its own), and CPU frequency where cpufreq exists (it does not on most VMs: reported unavailable).

Percentages are of the whole machine (all cores) unless the reading names a core; `_cores` readings are in
cores' worth of CPU time per second.
"""

from __future__ import annotations

import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from siliconlab.monitor.procs import MIN_INTERVAL_S, OtherProcesses
from siliconlab.monitor.sampler import Source

#: /proc/stat's aggregate "cpu" fields, in order (kernel >= 2.6.33). guest and guest_nice are already counted
#: in user and nice, so totals leave them out.
PROC_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
_BUSY = ("user", "nice", "system", "irq", "softirq")
_TOTAL = (*_BUSY, "idle", "iowait", "steal")
CPUFREQ = Path("/sys/devices/system/cpu")


def parse_proc_stat(text: str) -> dict[str, dict[str, int]]:
    """{'cpu': {...}, 'cpu0': {...}, ...} in clock ticks from /proc/stat text; missing trailing fields are 0."""
    times: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("cpu"):
            continue
        values = [int(v) for v in parts[1:]] + [0] * len(PROC_STAT_FIELDS)
        times[parts[0]] = dict(zip(PROC_STAT_FIELDS, values))
    return times


def cpu_shares(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """busy/steal/iowait/idle percentages of the time between two cumulative CPU-time readings.

    Works on /proc/stat ticks and on psutil's cpu_times seconds alike (same field names). busy excludes
    steal and iowait: steal is time we did not get, iowait is idle time with I/O pending.
    """
    delta = {k: max(0.0, float(after.get(k, 0)) - float(before.get(k, 0))) for k in _TOTAL}
    total = sum(delta.values())
    if total <= 0:
        return {}
    share = {k: 100.0 * v / total for k, v in delta.items()}
    return {
        "busy_pct": sum(share[k] for k in _BUSY),
        "steal_pct": share["steal"],
        "iowait_pct": share["iowait"],
        "idle_pct": share["idle"],
    }


class LoadAverage(Source):
    """1/5/15-minute load average (runnable + uninterruptible tasks); compare with the core count."""

    name = "loadavg"

    def available(self) -> tuple[bool, str]:
        return (True, "") if hasattr(os, "getloadavg") else (False, "os.getloadavg is not available on this OS")

    def read(self) -> dict[str, float]:
        one, five, fifteen = os.getloadavg()
        return {"load_1m": one, "load_5m": five, "load_15m": fifteen, "cores": float(os.cpu_count() or 1)}


class _Delta(Source):
    """A source whose figures are differences between two reads: no figure (and the baseline kept) when the
    reads are under `min_interval` apart, as at a sampler's first poll right after open()."""

    def __init__(self, min_interval: float = MIN_INTERVAL_S):
        self.min_interval = min_interval
        self._previous: object = None
        self._previous_t = 0.0

    @abstractmethod
    def _current(self) -> object:
        """The cumulative counters now."""

    @abstractmethod
    def _shares(self, before: Any, after: Any) -> dict[str, float]:
        """The readings for the interval between two `_current()` values."""

    def open(self) -> None:
        self._previous, self._previous_t = self._current(), time.monotonic()

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        if self._previous is not None and now - self._previous_t < self.min_interval:
            return {}
        current = self._current()
        previous, self._previous, self._previous_t = self._previous, current, now
        return {} if previous is None else self._shares(previous, current)


class ProcStat(_Delta):
    """Machine-wide busy/steal/iowait % since the previous read, from /proc/stat (Linux)."""

    name = "cpu"

    def __init__(self, path: Path | str = "/proc/stat", min_interval: float = MIN_INTERVAL_S):
        super().__init__(min_interval)
        self.path = Path(path)

    def available(self) -> tuple[bool, str]:
        try:
            ok = "cpu" in parse_proc_stat(self.path.read_text())
        except (OSError, ValueError) as exc:
            return False, f"no /proc/stat CPU times: {exc}"
        return (True, "") if ok else (False, f"{self.path} has no aggregate 'cpu' line")

    def _current(self) -> dict[str, int]:
        return parse_proc_stat(self.path.read_text())["cpu"]

    def _shares(self, before, after) -> dict[str, float]:
        return cpu_shares(before, after)


class PerCore(_Delta):
    """Busy % per logical core since the previous read (psutil, any OS): one hot core hides in a machine mean."""

    name = "cores"

    def available(self) -> tuple[bool, str]:
        try:
            psutil.cpu_times(percpu=True)
        except Exception as exc:
            return False, f"psutil cannot read per-core CPU times: {exc}"
        return True, ""

    def _current(self) -> list[dict[str, float]]:
        return [t._asdict() for t in psutil.cpu_times(percpu=True)]

    def _shares(self, before, after) -> dict[str, float]:
        readings = {}
        for index, (core_before, core_after) in enumerate(zip(before, after)):
            shares = cpu_shares(core_before, core_after)
            if shares:
                readings[f"cpu{index}_busy_pct"] = shares["busy_pct"]
        return readings


class Memory(Source):
    """RAM and swap in use (psutil): swapping during a timed run invalidates it."""

    name = "memory"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def read(self) -> dict[str, float]:
        ram, swap = psutil.virtual_memory(), psutil.swap_memory()
        return {
            "used_mb": (ram.total - ram.available) / 2**20,
            "available_mb": ram.available / 2**20,
            "used_pct": ram.percent,
            "swap_used_mb": swap.used / 2**20,
            "swap_used_pct": swap.percent,
        }


class CpuFrequency(Source):
    """Current clock per core from Linux cpufreq sysfs: throttling or a low governor shows here."""

    name = "cpufreq"

    def __init__(self, root: Path | str = CPUFREQ):
        self.root = Path(root)

    def _files(self) -> list[Path]:
        return sorted(self.root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))

    def available(self) -> tuple[bool, str]:
        if not self._files():
            return False, f"no cpufreq: {self.root}/cpu*/cpufreq does not exist (common in VMs)"
        return True, ""

    def read(self) -> dict[str, float]:
        mhz = [int(path.read_text()) / 1000 for path in self._files()]  # the file is in kHz
        return {"mean_mhz": sum(mhz) / len(mhz), "min_mhz": min(mhz), "max_mhz": max(mhz)}


def load_sources(own_pids: Iterable[int] | Callable[[], Iterable[int]] = ()) -> list[Source]:
    """Every machine-load source; those this machine lacks report unavailable with their reason."""
    return [LoadAverage(), ProcStat(), PerCore(), Memory(), OtherProcesses(own_pids), CpuFrequency()]
