"""Energy per inference from a real counter, or n/a with the reason — never an estimate.

Counters: RAPL (Linux /sys/class/powercap, package energy), NVML (NVIDIA), powermetrics (macOS, sudo).
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass
class EnergyReading:
    joules: float | None
    source: str
    reason: str = ""


class EnergyMeter:
    """start() before the timed loop, stop() after it; stop() returns joules or None with `reason` set."""

    source = "none"

    def __init__(self, reason: str):
        self.reason = reason

    def start(self) -> None:
        return None

    def stop(self) -> EnergyReading:
        return EnergyReading(None, self.source, self.reason)


class RaplMeter(EnergyMeter):
    source = "rapl"

    def __init__(self, domains: list[Path]):
        super().__init__("")
        self.domains = domains
        self._start: list[int] = []

    def _read(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> EnergyReading:
        end = self._read()
        total = 0
        for domain, before, after in zip(self.domains, self._start, end):
            delta = after - before
            if delta < 0:  # the counter wrapped
                delta += int((domain / "max_energy_range_uj").read_text())
            total += delta
        return EnergyReading(total / 1e6, self.source)


def rapl_domains(root: Path = POWERCAP) -> tuple[list[Path], str]:
    """Top-level package domains (intel-rapl:N, also used for AMD); the reason when there are none."""
    if not root.is_dir():
        return [], f"no RAPL: {root} does not exist"
    domains = [Path(p) for p in sorted(glob.glob(str(root / "intel-rapl:[0-9]*"))) if p.count(":") == 1]
    if not domains:
        return [], f"no RAPL: {root} has no intel-rapl package domain (common in VMs)"
    unreadable = [d for d in domains if not _readable(d / "energy_uj")]
    if unreadable:
        return [], f"no RAPL: {unreadable[0] / 'energy_uj'} is not readable (needs root)"
    return domains, ""


def _readable(path: Path) -> bool:
    try:
        int(path.read_text())
        return True
    except (OSError, ValueError):
        return False


class NvmlMeter(EnergyMeter):
    """Board energy from NVML's total-energy counter (siliconlab.monitor.nvml)."""

    source = "nvml"

    def __init__(self, index: int = 0):
        super().__init__("")
        from siliconlab.monitor import nvml

        self._meter = nvml.EnergyMeter(index)

    def start(self) -> None:
        self._meter.__enter__()

    def stop(self) -> EnergyReading:
        self._meter.__exit__(None, None, None)
        return EnergyReading(self._meter.joules, self.source)


def meter_for(device: str) -> EnergyMeter:
    """The energy counter for a unit's device on this machine, or a meter that explains why there is none."""
    if sys.platform == "darwin":  # CPU, GPU and Neural Engine alike: powermetrics reads all three rails
        from siliconlab.monitor.powermetrics import PowermetricsMeter, powermetrics_available

        ok, reason = powermetrics_available()
        return PowermetricsMeter() if ok else EnergyMeter(reason)
    if device == "cuda":
        from siliconlab.monitor import nvml

        ok, reason = nvml.available()
        return NvmlMeter() if ok else EnergyMeter(reason)
    if device == "cpu":
        domains, reason = rapl_domains()
        return RaplMeter(domains) if domains else EnergyMeter(reason)
    return EnergyMeter(f"no energy counter for device '{device}' on this machine")
