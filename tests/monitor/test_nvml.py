"""NVML arithmetic (monitor/nvml.py) with a fake pynvml: energy deltas, counter wrap, memory peaks."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from siliconlab.monitor import nvml


class FakeNvml:
    def __init__(self, energy_mj: list[int], used: list[int]):
        self.energy, self.used, self.inits = list(energy_mj), list(used), 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy.pop(0)

    def nvmlDeviceGetMemoryInfo(self, handle):
        value = self.used.pop(0) if len(self.used) > 1 else self.used[0]
        return SimpleNamespace(used=value, total=80 * 2**30)


def test_energy_meter_counts_joules_and_per_item():
    fake = FakeNvml([1_000_000, 1_250_500], [0])
    with nvml.EnergyMeter(nvml=fake) as meter:
        pass
    assert meter.joules == pytest.approx(250.5)
    assert meter.per_item(100) == pytest.approx(2.505)
    assert nvml.joules_per_item(1.0, 0) is None
    assert fake.inits == 1


def test_energy_counter_wraps():
    assert nvml.energy_delta_joules(2**64 - 500, 1500) == pytest.approx(2.0)


def test_memory_peak_tracks_the_maximum():
    tracker = nvml.PeakTracker()
    for value in (5, 9, 3):
        tracker.add(value)
    assert tracker.peak == 9 and tracker.samples == 3
    fake = FakeNvml([0], [100, 700, 300])
    with nvml.MemoryPeak(interval=0.001, nvml=fake) as peak:
        pass
    assert peak.bytes == 700
    assert nvml.memory_used(nvml=FakeNvml([0], [42]))["used"] == 42


def test_nvml_availability_says_why_not(monkeypatch):
    ok, reason = nvml.available()
    assert reason == "" if ok else reason.startswith(("missing Python package", "NVML cannot read GPU 0"))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # the package absent: import fails
    assert nvml.available() == (False, "missing Python package: nvidia-ml-py (import pynvml)")
