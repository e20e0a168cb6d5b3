"""CPU clock per core and one watched process (with its children), through psutil, on any OS.

`CpuClock` reads `psutil.cpu_freq(percpu=True)`. Where Linux has cpufreq that is the governor's current
frequency; where it has none (most VMs, this one included) psutil falls back to the "cpu MHz" lines of
/proc/cpuinfo, which a hypervisor usually fixes at the host's nominal clock — so a flat line there means
"not visible", not "no throttling". `CpuFrequency` in load.py reads cpufreq sysfs alone and says when it is
missing.

`WatchedProcess(pid)` is what `siliconlab monitor --pid PID` and `-- COMMAND` watch: resident memory,
threads and CPU use of the process and all its descendants (a bench's per-unit workers count as its own),
plus the CPU time of children that already exited (psutil's `children_user/system`), so a short-lived
child's work still shows.
"""

from __future__ import annotations

import time

import psutil

from siliconlab.monitor.procs import MIN_INTERVAL_S
from siliconlab.monitor.sampler import Source


class CpuClock(Source):
    """`cpuN_mhz` per logical core and `mean_mhz`/`min_mhz`/`max_mhz` from psutil (cpufreq or /proc/cpuinfo)."""

    name = "clock"

    def available(self) -> tuple[bool, str]:
        try:
            freqs = psutil.cpu_freq(percpu=True)
        except Exception as exc:  # psutil raises NotImplementedError or OSError where the OS has no figure
            return False, f"psutil cannot read the CPU clock: {exc}"
        if not freqs or not any(f.current for f in freqs):
            return False, "psutil reports no CPU clock on this machine"
        return True, ""

    def read(self) -> dict[str, float]:
        mhz = [float(f.current) for f in psutil.cpu_freq(percpu=True)]
        readings = {f"cpu{index}_mhz": value for index, value in enumerate(mhz)}
        return readings | {"mean_mhz": sum(mhz) / len(mhz), "min_mhz": min(mhz), "max_mhz": max(mhz)}


class WatchedProcess(Source):
    """`rss_mb`, `threads`, `processes`, `cpu_pct` (% of one core; 200 = two cores busy) of a pid and its tree.

    Raises once the process has exited; the sampler then sets it aside with that reason (the monitor stops
    on its own when it watches a command or pid that ended).
    """

    name = "proc"

    def __init__(self, pid: int):
        self.pid = pid
        self._process: psutil.Process | None = None
        self._cpu: float | None = None
        self._t = 0.0

    def available(self) -> tuple[bool, str]:
        try:
            psutil.Process(self.pid).cpu_times()
        except psutil.NoSuchProcess:
            return False, f"no process with pid {self.pid}"
        except psutil.AccessDenied:
            return False, f"not allowed to read process {self.pid}"
        return True, ""

    def open(self) -> None:
        self._process = psutil.Process(self.pid)
        self._cpu, self._t = self._tree_cpu()[0], time.monotonic()

    def _tree(self) -> list[psutil.Process]:
        assert self._process is not None
        try:
            return [self._process, *self._process.children(recursive=True)]
        except psutil.NoSuchProcess:
            raise RuntimeError(f"process {self.pid} has exited") from None

    def _tree_cpu(self) -> tuple[float, float, int, int]:
        """(CPU seconds of the tree incl. exited children, RSS bytes, threads, processes alive)."""
        cpu, rss, threads, alive = 0.0, 0, 0, 0
        for index, process in enumerate(self._tree()):
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss += process.memory_info().rss
                    threads += process.num_threads()
            except psutil.NoSuchProcess:
                if index == 0:
                    raise RuntimeError(f"process {self.pid} has exited") from None
                continue  # a child that ended during the scan: its time shows in its parent's children_*
            except psutil.AccessDenied:
                continue
            cpu += times.user + times.system
            if index == 0:  # reaped children: counted once, in the watched process's own figure
                cpu += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
            alive += 1
        return cpu, rss, threads, alive

    def read(self) -> dict[str, float]:
        if self._process is None:
            self.open()
        now = time.monotonic()
        cpu, rss, threads, alive = self._tree_cpu()
        readings = {"rss_mb": rss / 2**20, "threads": float(threads), "processes": float(alive)}
        if self._cpu is not None and now - self._t >= MIN_INTERVAL_S:
            readings["cpu_pct"] = max(0.0, cpu - self._cpu) / (now - self._t) * 100.0
            self._cpu, self._t = cpu, now
        return readings
