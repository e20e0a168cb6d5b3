"""Every NVIDIA GPU's live state through NVML (nvidia-ml-py, imported as `pynvml`): the dashboard's GPU rows.

`NvmlGpu(i)` reads, per poll: utilisation (`util_pct`, and `mem_util_pct`: memory-controller busy), memory
(`used_mb`, `total_mb`), board power (`power_w`, `power_limit_w`), temperature (`temp_c`), the SM clock
(`sm_mhz`, `sm_max_mhz`), the clock-throttle reasons as NVML's bitmask (`throttle`; `throttle_names()`
decodes it) and cumulative board energy (`energy_j`, since open()). A reading the board does not support
(NVMLError_NotSupported, e.g. on some MIG slices) is left out of that poll; the others still come.

`gpu_sources()` gives one source per GPU NVML sees, or a single `NvmlGpu(0)` whose available() says why
there is none (no package, no driver). The `nvml` argument takes a stand-in module: the tests replay a
recording of a real H100's NVML answers through it.
"""

from __future__ import annotations

import importlib
from typing import Any

from siliconlab.monitor.nvml import _nvml, energy_delta_joules
from siliconlab.monitor.sampler import Source

#: NVML's clocks-throttle (clocks-event) reason bits, nvml.h `nvmlClocksThrottleReason*`.
THROTTLE_REASONS = {
    0x1: "idle",
    0x2: "app clocks setting",
    0x4: "sw power cap",
    0x8: "hw slowdown",
    0x10: "sync boost",
    0x20: "sw thermal",
    0x40: "hw thermal",
    0x80: "hw power brake",
    0x100: "display clock setting",
}
#: Reasons that mean the chip slowed down against its will (heat, power), not by setting or idleness.
SLOWDOWN_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1


def throttle_names(mask: int) -> list[str]:
    """The throttle reasons set in NVML's bitmask, in bit order; unknown bits as hex."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"0x{unknown:x}"] if unknown else [])


def _module(nvml: Any) -> Any:
    return _nvml(nvml if nvml is not None else importlib.import_module("pynvml"))


class NvmlGpu(Source):
    """Utilisation, memory, power, temperature, SM clock, throttle reasons and energy of GPU `index`."""

    def __init__(self, index: int = 0, nvml: Any = None):
        self.index, self._given = index, nvml
        self.name = f"gpu{index}"
        self._nvml: Any = None
        self._handle: Any = None
        self._last_mj: int | None = None
        self._joules = 0.0
        self.device_name = ""

    def available(self) -> tuple[bool, str]:
        try:
            nvml = _module(self._given)
        except ImportError:
            return False, "missing Python package: nvidia-ml-py (import pynvml)"
        except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA driver here
            return False, f"NVML unavailable: {exc}"
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            nvml.nvmlDeviceGetMemoryInfo(handle)
        except Exception as exc:
            return False, f"NVML cannot read GPU {self.index}: {exc}"
        return True, ""

    def open(self) -> None:
        self._nvml = _module(self._given)
        self._handle = self._nvml.nvmlDeviceGetHandleByIndex(self.index)
        name = self._optional(self._nvml.nvmlDeviceGetName)
        self.device_name = name.decode() if isinstance(name, bytes) else str(name or f"GPU {self.index}")
        self._last_mj = self._optional(self._nvml.nvmlDeviceGetTotalEnergyConsumption)
        self._joules = 0.0

    def _optional(self, function: Any, *args: Any) -> Any:
        """function(handle, *args), or None where this board does not support it."""
        try:
            return function(self._handle, *args)
        except Exception:  # NVMLError_NotSupported and friends: leave the reading out
            return None

    def read(self) -> dict[str, float]:
        if self._handle is None:
            self.open()
        nvml, readings = self._nvml, {}
        memory = nvml.nvmlDeviceGetMemoryInfo(self._handle)  # required: a failure here is a real error
        readings["used_mb"], readings["total_mb"] = memory.used / 2**20, memory.total / 2**20
        rates = self._optional(nvml.nvmlDeviceGetUtilizationRates)
        if rates is not None:
            readings["util_pct"], readings["mem_util_pct"] = float(rates.gpu), float(rates.memory)
        for key, value, scale in (
            ("power_w", self._optional(nvml.nvmlDeviceGetPowerUsage), 1e-3),  # milliwatts
            ("power_limit_w", self._optional(nvml.nvmlDeviceGetEnforcedPowerLimit), 1e-3),
            ("temp_c", self._optional(nvml.nvmlDeviceGetTemperature, NVML_TEMPERATURE_GPU), 1.0),
            ("sm_mhz", self._optional(nvml.nvmlDeviceGetClockInfo, NVML_CLOCK_SM), 1.0),
            ("sm_max_mhz", self._optional(nvml.nvmlDeviceGetMaxClockInfo, NVML_CLOCK_SM), 1.0),
        ):
            if value is not None:
                readings[key] = float(value) * scale
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        mask = self._optional(reasons) if reasons is not None else None
        if mask is not None:
            readings["throttle"] = float(mask)
        energy = self._optional(nvml.nvmlDeviceGetTotalEnergyConsumption)
        if energy is not None and self._last_mj is not None:
            self._joules += energy_delta_joules(self._last_mj, int(energy))
            self._last_mj = int(energy)
            readings["energy_j"] = self._joules
        return readings


def gpu_sources(nvml: Any = None) -> list[Source]:
    """One NvmlGpu per device NVML counts; else one that reports why there is no GPU to read."""
    try:
        count = int(_module(nvml).nvmlDeviceGetCount())
    except Exception:  # no package or no driver: NvmlGpu(0).available() words the reason
        return [NvmlGpu(0, nvml)]
    return [NvmlGpu(index, nvml) for index in range(max(count, 1))]
