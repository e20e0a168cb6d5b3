"""The full set of sensors the dashboard, recordings and `bench --monitor` poll — one list, one Sampler.

Sources this machine lacks stay in the list: the Sampler reports each as unavailable with its reason (no
cpufreq in a VM, no RAPL without powercap, no NVIDIA driver, powermetrics off macOS), and the dashboard and
recordings show that reason instead of a figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from siliconlab.monitor.gpu import gpu_sources
from siliconlab.monitor.load import CpuFrequency, LoadAverage, Memory, PerCore, ProcStat
from siliconlab.monitor.powermetrics import PowermetricsSource
from siliconlab.monitor.procs import OtherProcesses
from siliconlab.monitor.rapl import RaplSource
from siliconlab.monitor.sampler import Source
from siliconlab.monitor.system import CpuClock, WatchedProcess


def hardware_sources(powermetrics_interval_ms: int = 500) -> list[Source]:
    """Clocks, memory, energy and GPUs: what the hardware did (no process scan)."""
    return [
        PerCore(),
        CpuClock(),
        CpuFrequency(),
        Memory(),
        RaplSource(),
        *gpu_sources(),
        PowermetricsSource(powermetrics_interval_ms),
    ]


def monitor_sources(
    watched: int | None = None, own_pids: Iterable[int] | Callable[[], Iterable[int]] = ()
) -> list[Source]:
    """Everything `siliconlab monitor` shows: load, CPU shares, other processes, the hardware, the watched pid.

    `own_pids`: processes counted apart from "other processes" (the monitor itself and what it watches).
    """
    own = own_pids if callable(own_pids) else (lambda pids=tuple(own_pids): pids)

    def ours() -> list[int]:
        return [os.getpid(), *([watched] if watched else []), *own()]

    sources: list[Source] = [LoadAverage(), ProcStat(), OtherProcesses(ours), *hardware_sources()]
    if watched is not None:
        sources.append(WatchedProcess(watched))
    return sources
