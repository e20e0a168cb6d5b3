"""powermetrics (macOS): the text parser on captured output, the sampler source's incremental accounting, and
the n/a path off macOS. Needs no coremltools, so it runs everywhere."""

from __future__ import annotations

import sys

import pytest

from siliconlab.monitor.energy import meter_for
from siliconlab.monitor.powermetrics import (
    PowermetricsSource,
    energy_over,
    measure_energy,
    parse_powermetrics,
    powermetrics_available,
    take_complete,
)

MACOS = sys.platform == "darwin"

POWERMETRICS_SAMPLE = """Machine model: Mac14,9
OS version: 23E224
Boot arguments:
Boot time: Mon Apr  8 09:06:31 2024



*** Sampled system activity (Tue Apr  9 10:20:11 2024 +0200) (102.86ms elapsed) ***


**** Processor usage ****

E-Cluster HW active frequency: 1166 MHz
E-Cluster HW active residency:  40.02% (600 MHz:   0% 972 MHz:  54% 1332 MHz:  19%)
CPU 0 frequency: 1271 MHz
P0-Cluster HW active frequency: 3204 MHz

CPU Power: 4200 mW
GPU Power: 300 mW
ANE Power: 1500 mW
Combined Power (CPU + GPU + ANE): 6000 mW

**** GPU usage ****

GPU HW active frequency: 389 MHz
GPU HW active residency:   1.78% (389 MHz: 1.8% 486 MHz:   0%)
GPU idle residency:  98.22%
GPU Power: 999 mW


*** Sampled system activity (Tue Apr  9 10:20:11 2024 +0200) (97.14ms elapsed) ***

**** Processor usage ****

CPU Power: 2000 mW
GPU Power: 100 mW
ANE Power: 900 mW
Combined Power (CPU + GPU + ANE): 3000 mW
"""


def test_powermetrics_parser_reads_rails_and_intervals():
    samples = parse_powermetrics(POWERMETRICS_SAMPLE)
    assert [round(s.seconds, 5) for s in samples] == [0.10286, 0.09714]
    assert samples[0].watts == {"cpu": 4.2, "gpu": 0.3, "ane": 1.5, "combined": 6.0}  # first GPU line counts
    joules, parts = energy_over(samples, seconds=2.0)
    mean_watts = (6.0 * 0.10286 + 3.0 * 0.09714) / 0.2
    assert joules == pytest.approx(mean_watts * 2.0)
    assert parts["ane"] == pytest.approx((1.5 * 0.10286 + 0.9 * 0.09714) / 0.2 * 2.0)


def test_powermetrics_parser_handles_intel_and_empty_output():
    intel = "*** Sampled system activity (x) (1000.0ms elapsed) ***\n\n" + (
        "Intel energy model derived package power (CPUs+GT+SA): 7.25W\n"
    )
    assert parse_powermetrics(intel)[0].watts == {"combined": 7.25}
    assert parse_powermetrics("") == []


def test_source_counts_a_sample_once_the_next_one_begins():
    """Fed in arbitrary chunks (as a line-buffered file grows), each sample is counted exactly once."""
    split = POWERMETRICS_SAMPLE.index("Combined Power (CPU + GPU + ANE): 6000 mW")
    first, second = POWERMETRICS_SAMPLE[:split], POWERMETRICS_SAMPLE[split:]
    assert take_complete(first) == ([], first)  # one header: still being written
    source = PowermetricsSource()
    source.feed(first)
    assert source.read()["energy_j"] == 0.0
    source.feed(second)  # the second header arrives: the first sample (6 W x 0.10286 s) is complete
    readings = source.read()
    assert readings["energy_j"] == pytest.approx(6.0 * 0.10286)
    assert readings["ane_j"] == pytest.approx(1.5 * 0.10286) and readings["power_w"] == 6.0
    source.feed("*** Sampled system activity (x) (100.0ms elapsed) ***\n")
    assert source.read()["energy_j"] == pytest.approx(6.0 * 0.10286 + 3.0 * 0.09714)


@pytest.mark.skipif(MACOS, reason="checks the n/a path off macOS")
def test_powermetrics_says_why_not_here():
    assert powermetrics_available() == (False, "powermetrics needs macOS")
    assert PowermetricsSource().available() == (False, "powermetrics needs macOS")
    with measure_energy() as energy:
        pass
    assert energy.joules is None and energy.reason == "powermetrics needs macOS"
    assert meter_for("ane").stop().joules is None
