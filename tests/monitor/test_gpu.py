"""NvmlGpu on a recording of a real H100's NVML answers (fixtures/nvml-h100.json), replayed by a stand-in pynvml."""

from __future__ import annotations

import sys

import pytest
from recorded_nvml import RECORDING, RecordedNvml

from siliconlab.monitor.gpu import NvmlGpu, gpu_sources, throttle_names
from siliconlab.monitor.sampler import Sampler


def _polls() -> list[dict]:
    return RECORDING["devices"][0]["polls"]


def test_readings_follow_the_recorded_h100():
    fake = RecordedNvml(RECORDING)
    gpu = NvmlGpu(0, nvml=fake)
    assert gpu.available() == (True, "")
    fake.step = -1
    gpu.open()
    assert gpu.device_name == "NVIDIA H100 80GB HBM3"
    readings = [gpu.read() for _ in _polls()]
    for poll, got in zip(_polls(), readings):
        assert got["used_mb"] == poll["nvmlDeviceGetMemoryInfo"]["used"] / 2**20
        assert got["total_mb"] == pytest.approx(81559, abs=1)  # the H100's 80 GB
        assert got["util_pct"] == poll["nvmlDeviceGetUtilizationRates"]["gpu"]
        assert got["power_w"] == pytest.approx(poll["nvmlDeviceGetPowerUsage"] / 1000)
        assert got["power_limit_w"] == 700.0 and got["sm_max_mhz"] == 1980.0
        assert got["sm_mhz"] == poll["nvmlDeviceGetClockInfo"] and got["temp_c"] == poll["nvmlDeviceGetTemperature"]
    # energy: the board counter (mJ since driver load) turned into joules since open()
    first, last = _polls()[0], _polls()[-1]
    spent = (last["nvmlDeviceGetTotalEnergyConsumption"] - first["nvmlDeviceGetTotalEnergyConsumption"]) / 1000
    assert readings[-1]["energy_j"] == pytest.approx(spent)
    idle = [r for r in readings if r["sm_mhz"] == 345]
    busy = [r for r in readings if r["sm_mhz"] == 1980]
    assert idle and busy and all(throttle_names(int(r["throttle"])) == ["idle"] for r in idle)
    assert all(r["throttle"] == 0 for r in busy) and max(r["util_pct"] for r in busy) > 0


def test_unsupported_readings_are_left_out_not_fatal():
    fake = RecordedNvml(RECORDING, drop=("nvmlDeviceGetPowerUsage", "nvmlDeviceGetCurrentClocksThrottleReasons"))
    with Sampler([NvmlGpu(0, nvml=fake)], interval=0.05) as sampler:
        pass
    values = sampler.samples[-1].values
    assert "gpu0.power_w" not in values and "gpu0.throttle" not in values
    assert "gpu0.used_mb" in values and "gpu0.sm_mhz" in values and not sampler.unavailable


def test_throttle_names_decode_nvml_bits():
    assert throttle_names(0) == []
    assert throttle_names(0x1) == ["idle"]
    assert throttle_names(0x4 | 0x40) == ["sw power cap", "hw thermal"]
    assert throttle_names(0x1000) == ["0x1000"]


def test_without_nvml_one_source_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # the package absent: import fails
    sources = gpu_sources()
    assert [s.name for s in sources] == ["gpu0"]
    assert sources[0].available() == (False, "missing Python package: nvidia-ml-py (import pynvml)")
    assert len(gpu_sources(RecordedNvml(RECORDING))) == 1
