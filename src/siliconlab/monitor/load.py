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
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

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


class ProcStat(Source):
    """Machine-wide busy/steal/iowait % since the previous read, from /proc/stat (Linux)."""

    name = "cpu"

    def __init__(self, path: Path | str = "/proc/stat"):
        self.path = Path(path)
        self._previous: dict[str, int] | None = None

    def available(self) -> tuple[bool, str]:
        try:
            ok = "cpu" in parse_proc_stat(self.path.read_text())
        except (OSError, ValueError) as exc:
            return False, f"no /proc/stat CPU times: {exc}"
        return (True, "") if ok else (False, f"{self.path} has no aggregate 'cpu' line")

    def open(self) -> None:
        self._previous = parse_proc_stat(self.path.read_text())["cpu"]

    def read(self) -> dict[str, float]:
        current = parse_proc_stat(self.path.read_text())["cpu"]
        previous, self._previous = self._previous, current
        return {} if previous is None else cpu_shares(previous, current)


class PerCore(Source):
    """Busy % per logical core since the previous read (psutil, any OS): one hot core hides in a machine mean."""

    name = "cores"

    def __init__(self) -> None:
        self._previous: list[dict[str, float]] | None = None

    def available(self) -> tuple[bool, str]:
        try:
            psutil.cpu_times(percpu=True)
        except Exception as exc:
            return False, f"psutil cannot read per-core CPU times: {exc}"
        return True, ""

    def _times(self) -> list[dict[str, float]]:
        return [t._asdict() for t in psutil.cpu_times(percpu=True)]

    def open(self) -> None:
        self._previous = self._times()

    def read(self) -> dict[str, float]:
        current = self._times()
        previous, self._previous = self._previous, current
        if previous is None:
            return {}
        readings = {}
        for index, (before, after) in enumerate(zip(previous, current)):
            shares = cpu_shares(before, after)
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


class OtherProcesses(Source):
    """CPU used by every process outside `pids` (and their descendants) since the previous read.

    `pids` is a collection or a callable returning one, so the bench can add worker pids as it spawns them.
    Readings: other_cores / other_pct (of the whole machine) and own_cores. Processes that start and end
    between two reads are not seen (their CPU still shows in `cpu.busy_pct`); `top` holds the three biggest
    other consumers of the last interval as (pid, name, cores) for a report.
    """

    name = "procs"

    def __init__(self, pids: Iterable[int] | Callable[[], Iterable[int]] = ()):
        self._pids = pids
        self._previous: dict[tuple[int, float], float] = {}
        self._previous_t = 0.0
        self.top: list[tuple[int, str, float]] = []

    def available(self) -> tuple[bool, str]:
        try:
            next(iter(psutil.process_iter(["cpu_times"])), None)
        except Exception as exc:
            return False, f"psutil cannot list processes: {exc}"
        return True, ""

    def _own(self) -> set[int]:
        roots = set(self._pids() if callable(self._pids) else self._pids)
        own = set(roots)
        for pid in roots:
            try:
                own.update(child.pid for child in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
        return own

    def _snapshot(self) -> tuple[float, dict[tuple[int, float], tuple[float, psutil.Process]]]:
        """CPU seconds per process, keyed by (pid, create time) so a reused pid is a new process."""
        now, cpu = time.monotonic(), {}
        for proc in psutil.process_iter(["cpu_times"]):
            times = proc.info["cpu_times"]
            try:
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            if times is not None:
                cpu[key] = (times.user + times.system, proc)
        return now, cpu

    def open(self) -> None:
        self._previous_t, snapshot = self._snapshot()
        self._previous = {key: used for key, (used, _) in snapshot.items()}

    def read(self) -> dict[str, float]:
        now, snapshot = self._snapshot()
        elapsed, previous = now - self._previous_t, self._previous
        self._previous_t, self._previous = now, {key: used for key, (used, _) in snapshot.items()}
        if elapsed <= 0:
            return {}
        own = self._own()
        other, mine, per_process = 0.0, 0.0, []
        for key, (used, proc) in snapshot.items():
            # a process absent from the previous snapshot started since: all its CPU time is in this interval
            delta = max(0.0, used - previous.get(key, 0.0))
            if key[0] in own:
                mine += delta
            elif delta > 0:
                other += delta
                per_process.append((delta, key[0], proc))
        per_process.sort(key=lambda entry: entry[0], reverse=True)
        self.top = [(pid, _name(proc), delta / elapsed) for delta, pid, proc in per_process[:3]]
        cores = float(os.cpu_count() or 1)
        return {
            "other_cores": other / elapsed,
            "other_pct": 100.0 * other / elapsed / cores,
            "own_cores": mine / elapsed,
        }


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


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
