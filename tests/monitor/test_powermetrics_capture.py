"""The powermetrics parser on real captured output (fixtures/README.md says where each capture comes from)."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.monitor.powermetrics import PowermetricsSource, parse_powermetrics

FIXTURES = Path(__file__).parent / "fixtures"


def test_intel_mac_capture_gives_package_power():
    samples = parse_powermetrics((FIXTURES / "powermetrics-intel-macbookpro15_1.txt").read_text())
    assert len(samples) == 1
    assert samples[0].seconds == pytest.approx(1.00238)
    assert samples[0].watts == {"combined": 8.53}  # "Intel energy model derived package power (CPUs+GT+SA): 8.53W"


def test_apple_silicon_cluster_power_is_not_the_cpu_rail():
    """The M2 capture has 'E-Cluster Power: 6 mW' but none of the CPU/GPU/ANE rail lines: no sample."""
    text = (FIXTURES / "powermetrics-m2-mac14_2-head.txt").read_text()
    assert "E-Cluster Power: 6 mW" in text
    assert parse_powermetrics(text) == []


def test_source_reports_rail_watts_of_the_last_complete_sample():
    intel = (FIXTURES / "powermetrics-intel-macbookpro15_1.txt").read_text()
    source = PowermetricsSource()
    source.feed(intel)
    assert source.read()["energy_j"] == 0.0  # still being written: no next header yet
    source.feed("\n*** Sampled system activity (Mon Jan 15 18:21:33 2024 +0100) (1001.00ms elapsed) ***\n")
    readings = source.read()
    assert readings["power_w"] == 8.53 and readings["energy_j"] == pytest.approx(8.53 * 1.00238)
    source = PowermetricsSource()
    source.feed("*** Sampled system activity (x) (500.0ms elapsed) ***\nCPU Power: 1200 mW\nGPU Power: 300 mW\n"
                "ANE Power: 2500 mW\n*** Sampled system activity (x) (500.0ms elapsed) ***\n")  # fmt: skip
    readings = source.read()
    assert (readings["cpu_w"], readings["gpu_w"], readings["ane_w"]) == (1.2, 0.3, 2.5)
    assert readings["power_w"] == pytest.approx(4.0)
