"""Energy on macOS from `powermetrics` (CPU, GPU and Neural Engine power; needs root).

    ok, reason = powermetrics_available()
    with measure_energy(interval_ms=100) as energy:
        run_the_work()
    energy.joules       # float, or None with energy.reason saying why
    energy.components   # {"cpu": J, "gpu": J, "ane": J} where powermetrics reported them

How: `powermetrics --samplers cpu_power,gpu_power,ane_power -i <ms> -o <file>` runs (through `sudo -n`
unless we are root) for the duration of the block. Each sample reports average power over its own
interval; the block's energy is the time-weighted mean power of the complete samples times the block's
wall time. A block shorter than one sample interval has no complete sample: None with that reason.
The power is system-wide for those rails — other processes' work counts too, as with RAPL.

Lines parsed (Apple silicon, macOS 12–15 text format), per sample:

    *** Sampled system activity (Tue Oct  3 10:20:11 2023 +0200) (1002.86ms elapsed) ***
    CPU Power: 325 mW
    GPU Power: 10 mW
    ANE Power: 0 mW
    Combined Power (CPU + GPU + ANE): 335 mW

("GPU Power" appears again under "**** GPU usage ****" on recent macOS: the first value in a sample counts.)
Intel Macs report `Intel energy model derived package power (CPUs+GT+SA): 1.23W` instead; that is parsed as
the combined power. Anything else in the output is ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SAMPLERS = "cpu_power,gpu_power,ane_power"
_HEADER = re.compile(r"^\*\*\* Sampled system activity .*\(([\d.]+)\s*ms elapsed\) \*\*\*", re.MULTILINE)
_RAIL = re.compile(r"^(CPU|GPU|ANE) Power:\s*([\d.]+)\s*mW\s*$", re.MULTILINE)
_COMBINED = re.compile(r"^Combined Power \(CPU \+ GPU \+ ANE\):\s*([\d.]+)\s*mW\s*$", re.MULTILINE)
_INTEL = re.compile(r"^Intel energy model derived package power \(CPUs\+GT\+SA\):\s*([\d.]+)\s*W\s*$", re.MULTILINE)


@dataclass
class PowerSample:
    """One powermetrics sample: its interval and average power in watts per rail ('combined' always set)."""

    seconds: float
    watts: dict[str, float]


@dataclass
class EnergyMeasurement:
    joules: float | None = None
    reason: str = ""
    seconds: float = 0.0
    components: dict[str, float] = field(default_factory=dict)
    samples: int = 0


def parse_powermetrics(text: str) -> list[PowerSample]:
    """Samples from powermetrics' text output; a sample without any power line is skipped."""
    headers = list(_HEADER.finditer(text))
    samples = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body = text[header.end() : end]
        watts: dict[str, float] = {}
        for rail, milliwatts in _RAIL.findall(body):
            watts.setdefault(rail.lower(), float(milliwatts) / 1000)
        combined = _COMBINED.search(body)
        intel = _INTEL.search(body)
        if combined:
            watts["combined"] = float(combined.group(1)) / 1000
        elif intel:
            watts["combined"] = float(intel.group(1))
        elif watts:
            watts["combined"] = sum(watts.values())
        else:
            continue
        samples.append(PowerSample(float(header.group(1)) / 1000, watts))
    return samples


def energy_over(samples: list[PowerSample], seconds: float) -> tuple[float, dict[str, float]]:
    """Joules over `seconds` at the samples' time-weighted mean power, total and per rail."""
    covered = sum(s.seconds for s in samples)
    rails = {rail for s in samples for rail in s.watts}
    mean = {rail: sum(s.watts.get(rail, 0.0) * s.seconds for s in samples) / covered for rail in rails}
    components = {rail: watts * seconds for rail, watts in mean.items() if rail != "combined"}
    return mean["combined"] * seconds, components


def _command() -> list[str]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return [*prefix, "powermetrics", "--samplers", SAMPLERS]


def powermetrics_available() -> tuple[bool, str]:
    """(True, '') where powermetrics can be started without a password prompt; else (False, the reason)."""
    if sys.platform != "darwin":
        return False, "powermetrics needs macOS"
    if shutil.which("powermetrics") is None and not Path("/usr/bin/powermetrics").exists():
        return False, "powermetrics not found (it ships with macOS in /usr/bin)"
    if os.geteuid() != 0:
        probe = subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10)
        if probe.returncode != 0:
            return False, "powermetrics needs root: run as root, or allow passwordless sudo for /usr/bin/powermetrics"
    return True, ""


@contextmanager
def measure_energy(interval_ms: int = 100) -> Iterator[EnergyMeasurement]:
    """Energy spent by CPU+GPU+ANE while the block runs; `.joules` is None with `.reason` where it can't be read."""
    result = EnergyMeasurement()
    ok, reason = powermetrics_available()
    if not ok:
        result.reason = reason
        yield result
        return
    with tempfile.TemporaryDirectory(prefix="siliconlab-powermetrics-") as folder:
        output = Path(folder) / "samples.txt"
        process = subprocess.Popen(
            [*_command(), "-i", str(interval_ms), "-o", str(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started = time.perf_counter()
        try:
            yield result
        finally:
            result.seconds = time.perf_counter() - started
            process.send_signal(signal.SIGINT)  # sudo relays it; powermetrics flushes and exits
            try:
                _, stderr = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate()
            samples = parse_powermetrics(output.read_text(errors="replace")) if output.exists() else []
            result.samples = len(samples)
            if samples:
                result.joules, result.components = energy_over(samples, result.seconds)
            elif process.returncode not in (0, -signal.SIGINT) and stderr:
                result.reason = f"powermetrics failed: {stderr.decode(errors='replace').strip()[:200]}"
            else:
                result.reason = f"no complete powermetrics sample: the block ran under one interval ({interval_ms} ms)"


class PowermetricsMeter:
    """The bench's EnergyMeter protocol (start()/stop() -> EnergyReading) on top of measure_energy()."""

    source = "powermetrics"

    def __init__(self, interval_ms: int = 100):
        self.interval_ms = interval_ms
        self._context = None
        self._measurement: EnergyMeasurement | None = None

    def start(self) -> None:
        self._context = measure_energy(self.interval_ms)
        self._measurement = self._context.__enter__()

    def stop(self):
        from siliconlab.bench.energy import EnergyReading

        if self._context is None or self._measurement is None:
            return EnergyReading(None, self.source, "stop() before start()")
        self._context.__exit__(None, None, None)
        reading = self._measurement
        self._context = self._measurement = None
        return EnergyReading(reading.joules, self.source, reading.reason)
