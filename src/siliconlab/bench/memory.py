"""What a timed unit process held: its peak resident memory and, on CUDA, the card's memory — for every row."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process. On Linux, VmHWM: ru_maxrss survives fork+exec and would report
    the parent's peak when that was larger."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def gpu_memory_mb() -> dict[str, float] | None:
    """torch's peak allocation in this process and NVML's used memory on the card (None without CUDA)."""
    from siliconlab.monitor import nvml

    peak = nvml.torch_peak_bytes()
    if peak is None:
        return None
    memory: dict[str, float] = {"torch_peak": peak / 2**20}
    if nvml.available()[0]:
        memory |= {f"device_{k}": v / 2**20 for k, v in nvml.memory_used().items()}
    return memory
