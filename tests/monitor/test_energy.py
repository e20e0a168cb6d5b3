"""Energy counters as sources: RAPL on a fake powercap tree, NVML through a fake pynvml, and meter_for's n/a."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from siliconlab.monitor import energy, nvml
from siliconlab.monitor.rapl import RaplSource, counter_delta, rapl_domains
from siliconlab.monitor.sampler import Sampler


def _powercap(root: Path, energy_uj: int, max_uj: int = 1_000_000) -> Path:
    domain = root / "intel-rapl:0"
    domain.mkdir(parents=True)
    (domain / "name").write_text("package-0\n")
    (domain / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (domain / "energy_uj").write_text(f"{energy_uj}\n")
    (root / "intel-rapl:0:0").mkdir()  # a sub-domain (cores): inside the package figure, never added again
    (root / "intel-rapl:0:0" / "energy_uj").write_text("123\n")
    return domain


def test_rapl_is_unavailable_with_a_reason(tmp_path: Path):
    domains, reason = rapl_domains(tmp_path / "nowhere")
    assert domains == [] and reason == f"no RAPL: {tmp_path / 'nowhere'} does not exist"
    empty = tmp_path / "powercap"
    empty.mkdir()
    assert "no intel-rapl package domain" in RaplSource(empty).available()[1]
    broken = tmp_path / "broken" / "intel-rapl:0"
    broken.mkdir(parents=True)
    (broken / "energy_uj").write_text("permission denied stands in here")
    assert "is not readable" in rapl_domains(broken.parent)[1]


def test_rapl_source_accumulates_joules_across_a_wrap(tmp_path: Path):
    domain = _powercap(tmp_path, energy_uj=990_000)
    source = RaplSource(tmp_path)
    assert source.available() == (True, "") and [d.name for d in source.domains] == ["intel-rapl:0"]
    source.open()
    (domain / "energy_uj").write_text("999000\n")
    assert source.read() == {"energy_j": pytest.approx(0.009), "package-0_j": pytest.approx(0.009)}
    (domain / "energy_uj").write_text("4000\n")  # wrapped at 1 J: 1000 + 4000 uJ more
    assert source.read()["energy_j"] == pytest.approx(0.014)
    assert counter_delta(10, 4, 16) == 10 and counter_delta(4, 10, 16) == 6


def test_rapl_meter_is_the_source_read_at_start_and_stop(tmp_path: Path):
    domain = _powercap(tmp_path, energy_uj=999_000)
    meter = energy.CounterMeter(RaplSource(tmp_path), "rapl")
    assert meter.stop().reason == "stop() before start()"
    meter.start()
    (domain / "energy_uj").write_text("4000\n")
    reading = meter.stop()
    assert reading == energy.EnergyReading(pytest.approx(0.005), "rapl", "")


def test_meter_for_this_machine_never_guesses():
    for device in ("cpu", "cuda", "npu"):
        meter = energy.meter_for(device)
        meter.start()
        result = meter.stop()
        assert (result.joules is None) == bool(result.reason), device
    assert energy.meter_for("npu").stop().reason == "no energy counter for device 'npu' on this machine"
    if sys.platform == "linux" and not Path("/sys/class/powercap").exists():
        assert energy.meter_for("cpu").stop().reason == "no RAPL: /sys/class/powercap does not exist"


class FakeNvml(types.ModuleType):
    """pynvml's calls used here; the energy counter (mJ) steps through `energy_mj`."""

    def __init__(self, energy_mj: list[int]):
        super().__init__("pynvml")
        self.energy = list(energy_mj)

    def nvmlInit(self):
        return None

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("handle", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy.pop(0) if len(self.energy) > 1 else self.energy[0]

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=3 * 2**20, total=8 * 2**20)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return types.SimpleNamespace(gpu=42, memory=7)


def test_meter_for_cuda_reads_nvml_energy_across_a_wrap(monkeypatch: pytest.MonkeyPatch):
    near_wrap = 2**64 - 500
    fake = FakeNvml([near_wrap, near_wrap, near_wrap, 1500])  # available() probe, open(), then start and stop
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    if sys.platform == "darwin":
        pytest.skip("macOS meters every device through powermetrics")
    meter = energy.meter_for("cuda")
    assert isinstance(meter, energy.CounterMeter) and meter.source == "nvml"
    meter.start()
    assert meter.stop() == energy.EnergyReading(pytest.approx(2.0), "nvml", "")


def test_nvml_sources_in_a_sampler(monkeypatch: pytest.MonkeyPatch):
    fake = FakeNvml([1000, 1000, 3000, 6000])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with Sampler([nvml.NvmlEnergy(0), nvml.NvmlDevice(0)], interval=10.0) as sampler:
        pass  # two polls: at start and at stop
    summary = sampler.summary()
    assert summary["unavailable"] == {} and summary["samples"] == 2
    assert summary["readings"]["nvml0.energy_j"]["total"] == pytest.approx(3.0)  # polls read 3000, 6000 mJ
    assert summary["readings"]["gpu0.used_mb"]["max"] == 3.0
    assert summary["readings"]["gpu0.util_pct"]["mean"] == 42.0


def test_nvml_unavailable_without_the_package(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert nvml.NvmlEnergy(0).available() == (False, "missing Python package: nvidia-ml-py (import pynvml)")
    assert nvml.NvmlDevice(0).available()[0] is False
