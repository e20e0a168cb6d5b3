"""NVML energy and memory readings for NVIDIA units (package nvidia-ml-py, imported as `pynvml`).

- available() -> (ok, reason)
- EnergyMeter: context manager; `.joules` is the board energy spent inside the block, from
  nvmlDeviceGetTotalEnergyConsumption (a millijoule counter since driver load, Volta and newer), and
  `.per_item(n)` divides it by the inferences run.
- NvmlEnergy / NvmlDevice: the same counters as sampler sources (siliconlab.monitor.sampler.Source):
  cumulative board joules since open(), and memory in use plus GPU utilisation.
- memory_used() / MemoryPeak: device memory in use now (NVML: every process on the card) and the highest
  value seen by a background sampler; torch's own peak (`torch.cuda.max_memory_allocated`) is in
  torch_peak_bytes(), which is exact for this process but blind to other libraries' allocations.

The arithmetic (counter deltas, wrap-around, per-item division, peak tracking) lives in small functions that
take plain numbers so CPU-only tests check it with a fake `pynvml`.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

from siliconlab.monitor.sampler import Source

#: nvmlDeviceGetTotalEnergyConsumption is an unsigned long long in millijoules.
COUNTER_MODULUS_MJ = 2**64


_initialised: set[int] = set()


def _nvml(nvml: Any = None) -> Any:
    """The pynvml module (or a stand-in for tests), nvmlInit() called once per module."""
    nvml = nvml if nvml is not None else importlib.import_module("pynvml")
    if id(nvml) not in _initialised:
        nvml.nvmlInit()
        _initialised.add(id(nvml))
    return nvml


def available(index: int = 0) -> tuple[bool, str]:
    """Can energy be read on GPU `index`? (False, why) when the package, driver or counter is missing."""
    try:
        importlib.import_module("pynvml")
    except ImportError:
        return False, "missing Python package: nvidia-ml-py (import pynvml)"
    try:
        nvml = _nvml()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # NVMLError subclasses: no driver, no device, not supported on this GPU
        return False, f"NVML cannot read GPU {index} energy: {exc}"
    return True, ""


def energy_delta_joules(start_mj: int, end_mj: int) -> float:
    """Energy between two counter readings, in joules, tolerating one wrap of the 64-bit counter."""
    delta = end_mj - start_mj
    if delta < 0:
        delta += COUNTER_MODULUS_MJ
    return delta / 1000.0


def joules_per_item(joules: float, items: int) -> float | None:
    return joules / items if items > 0 else None


class EnergyMeter:
    """`with EnergyMeter() as meter: ...` then meter.joules (board energy inside the block) and meter.seconds.

    The counter updates every few tens of milliseconds, so measure blocks of a second or more for a figure
    to quote; short blocks read 0 or one update step.
    """

    def __init__(self, index: int = 0, nvml: Any = None):
        self.nvml = _nvml(nvml)
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        self.joules: float | None = None
        self.seconds: float | None = None

    def _read(self) -> int:
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def __enter__(self) -> EnergyMeter:
        self._start_mj = self._read()
        self._start_s = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.joules = energy_delta_joules(self._start_mj, self._read())
        self.seconds = time.perf_counter() - self._start_s

    @property
    def watts(self) -> float | None:
        if self.joules is None or not self.seconds:
            return None
        return self.joules / self.seconds

    def per_item(self, items: int) -> float | None:
        return None if self.joules is None else joules_per_item(self.joules, items)


def memory_used(index: int = 0, nvml: Any = None) -> dict[str, int]:
    """{'used': bytes, 'total': bytes} on GPU `index`, all processes together (NVML's view)."""
    nvml = _nvml(nvml)
    info = nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(index))
    return {"used": int(info.used), "total": int(info.total)}


class PeakTracker:
    """Running maximum of readings; separate from the sampler so tests feed it numbers."""

    def __init__(self) -> None:
        self.peak = 0
        self.samples = 0

    def add(self, value: int) -> None:
        self.peak = max(self.peak, int(value))
        self.samples += 1


class MemoryPeak:
    """`with MemoryPeak() as peak: ...` samples NVML used memory every `interval` s; peak.bytes after the block."""

    def __init__(self, index: int = 0, interval: float = 0.01, nvml: Any = None):
        self.index, self.interval, self.nvml = index, interval, nvml
        self.tracker = PeakTracker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.tracker.add(memory_used(self.index, self.nvml)["used"])

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemoryPeak:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def bytes(self) -> int:
        return self.tracker.peak


def torch_peak_bytes(reset: bool = False) -> int | None:
    """torch's peak allocated bytes on the current device (None without CUDA); reset starts a new window."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    peak = int(torch.cuda.max_memory_allocated())
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak


class NvmlEnergy(Source):
    """Board energy as a sampler source: `energy_j` cumulative since open(), one 64-bit wrap per read tolerated."""

    def __init__(self, index: int = 0, nvml: Any = None):
        self.index, self._module = index, nvml
        self.name = f"nvml{index}"
        self._last_mj: int | None = None
        self._joules = 0.0

    def available(self) -> tuple[bool, str]:
        return (True, "") if self._module is not None else available(self.index)

    def _read_mj(self) -> int:
        nvml = _nvml(self._module)
        return int(nvml.nvmlDeviceGetTotalEnergyConsumption(nvml.nvmlDeviceGetHandleByIndex(self.index)))

    def open(self) -> None:
        self._last_mj, self._joules = self._read_mj(), 0.0

    def read(self) -> dict[str, float]:
        if self._last_mj is None:
            self.open()
        assert self._last_mj is not None  # open() read it
        now = self._read_mj()
        self._joules += energy_delta_joules(self._last_mj, now)
        self._last_mj = now
        return {"energy_j": self._joules}


class NvmlDevice(Source):
    """Device memory in use (every process on the card) and GPU utilisation: is someone else on our GPU?"""

    def __init__(self, index: int = 0, nvml: Any = None):
        self.index, self._module = index, nvml
        self.name = f"gpu{index}"

    def available(self) -> tuple[bool, str]:
        try:
            memory_used(self.index, self._module)
        except ImportError:
            return False, "missing Python package: nvidia-ml-py (import pynvml)"
        except Exception as exc:  # NVMLError: no driver or no such device
            return False, f"NVML cannot read GPU {self.index}: {exc}"
        return True, ""

    def read(self) -> dict[str, float]:
        memory = memory_used(self.index, self._module)
        readings = {"used_mb": memory["used"] / 2**20, "total_mb": memory["total"] / 2**20}
        nvml = _nvml(self._module)
        try:
            rates = nvml.nvmlDeviceGetUtilizationRates(nvml.nvmlDeviceGetHandleByIndex(self.index))
            readings["util_pct"] = float(rates.gpu)
        except Exception:  # not supported on every board (e.g. some MIG slices): memory alone still helps
            pass
        return readings
