"""Energy per timed block from a real counter, or n/a with the reason — never an estimate.

The bench asks `meter_for(device)` for a meter, calls start() after warm-up and stop() after the measured
iterations, and gets an `EnergyReading`. Counters: RAPL package energy on Linux CPUs, NVML board energy on
NVIDIA GPUs, powermetrics CPU+GPU+ANE power on macOS (needs root). RAPL and NVML are the same sources the
background sampler polls (`energy_j`, cumulative joules with wrap handling), read at start and stop.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass

from siliconlab.monitor import nvml
from siliconlab.monitor.powermetrics import (
    EnergyMeasurement,
    PowermetricsSource,
    measure_energy,
    powermetrics_available,
)
from siliconlab.monitor.rapl import RaplSource
from siliconlab.monitor.sampler import Source


@dataclass
class EnergyReading:
    """Joules spent in the block, or None with `reason` saying why there is no counter."""

    joules: float | None
    source: str
    reason: str = ""


class EnergyMeter:
    """start() before the timed loop, stop() after it. This base class is the meter for 'no counter here'."""

    source = "none"

    def __init__(self, reason: str):
        self.reason = reason

    def start(self) -> None:
        return None

    def stop(self) -> EnergyReading:
        return EnergyReading(None, self.source, self.reason)


class CounterMeter(EnergyMeter):
    """A meter over any energy Source: the difference of its `energy_j` reading between start() and stop()."""

    def __init__(self, counter: Source, source: str):
        super().__init__("")
        self.counter, self.source = counter, source
        self._start: float | None = None

    def start(self) -> None:
        self.counter.open()
        self._start = self.counter.read()["energy_j"]

    def stop(self) -> EnergyReading:
        if self._start is None:
            return EnergyReading(None, self.source, "stop() before start()")
        joules = self.counter.read()["energy_j"] - self._start
        self.counter.close()
        self._start = None
        return EnergyReading(joules, self.source)


class PowermetricsMeter(EnergyMeter):
    """macOS: measure_energy() around the block (mean power of its samples x the block's wall time)."""

    source = "powermetrics"

    def __init__(self, interval_ms: int = 100):
        super().__init__("")
        self.interval_ms = interval_ms
        self._context: AbstractContextManager[EnergyMeasurement] | None = None
        self._measurement: EnergyMeasurement | None = None

    def start(self) -> None:
        self._context = measure_energy(self.interval_ms)
        self._measurement = self._context.__enter__()

    def stop(self) -> EnergyReading:
        if self._context is None or self._measurement is None:
            return EnergyReading(None, self.source, "stop() before start()")
        self._context.__exit__(None, None, None)
        reading = self._measurement
        self._context = self._measurement = None
        return EnergyReading(reading.joules, self.source, reading.reason)


def energy_sources() -> list[Source]:
    """Every energy counter a sampler could poll here (RAPL, NVML GPU 0, powermetrics); absent ones say why."""
    return [RaplSource(), nvml.NvmlEnergy(0), PowermetricsSource()]


def meter_for(device: str) -> EnergyMeter:
    """The energy counter for a unit's device on this machine, or a meter that explains why there is none."""
    if sys.platform == "darwin":  # CPU, GPU and Neural Engine alike: powermetrics reads all three rails
        ok, reason = powermetrics_available()
        return PowermetricsMeter() if ok else EnergyMeter(reason)
    if device == "cuda":
        ok, reason = nvml.available()
        return CounterMeter(nvml.NvmlEnergy(0), "nvml") if ok else EnergyMeter(reason)
    if device == "cpu":
        rapl = RaplSource()
        ok, reason = rapl.available()
        return CounterMeter(rapl, "rapl") if ok else EnergyMeter(reason)
    return EnergyMeter(f"no energy counter for device '{device}' on this machine")
