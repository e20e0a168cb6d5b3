"""Energy: n/a with a reason where no counter exists, RAPL read correctly where one does."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.bench import energy


def test_energy_is_na_with_a_reason_without_rapl(tmp_path: Path):
    domains, reason = energy.rapl_domains(tmp_path / "nowhere")
    assert domains == [] and "does not exist" in reason
    empty = tmp_path / "powercap"
    empty.mkdir()
    assert "no intel-rapl package domain" in energy.rapl_domains(empty)[1]


def test_rapl_meter_reads_package_energy_and_handles_wraparound(tmp_path: Path):
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "max_energy_range_uj").write_text("1000000\n")
    (domain / "energy_uj").write_text("999000\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-domain: must not be double counted
    domains, reason = energy.rapl_domains(tmp_path)
    assert [d.name for d in domains] == ["intel-rapl:0"] and reason == ""
    meter = energy.RaplMeter(domains)
    meter.start()
    (domain / "energy_uj").write_text("4000\n")  # wrapped: 1000 + 4000 uJ
    assert meter.stop().joules == pytest.approx(0.005)


def test_meter_for_this_cpu_never_guesses():
    reading = energy.meter_for("cpu")
    reading.start()
    result = reading.stop()
    assert (result.joules is None) == bool(result.reason)
