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

`PowermetricsSource` is the same counter for the background sampler (siliconlab.monitor.sampler): it runs
powermetrics line-buffered (`-b 1`) and adds up each sample's energy (power x its own interval) once the next
sample has begun, so `energy_j` trails the present by up to one interval. For one block's energy the bench
uses measure_energy(), which scales the mean power to the block's exact wall time.
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

from siliconlab.monitor.sampler import Source

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


def take_complete(buffer: str) -> tuple[list[PowerSample], str]:
    """Samples that are certainly complete (another header follows them) and the text still being written."""
    headers = list(_HEADER.finditer(buffer))
    if len(headers) < 2:
        return [], buffer
    cut = headers[-1].start()
    return parse_powermetrics(buffer[:cut]), buffer[cut:]


class PowermetricsSource(Source):
    """CPU+GPU+ANE energy on macOS: `energy_j` and per-rail `<rail>_j` cumulative since open(); `power_w` and
    per-rail `<rail>_w` (cpu_w, gpu_w, ane_w) from the last complete sample."""

    name = "powermetrics"

    def __init__(self, interval_ms: int = 100):
        self.interval_ms = interval_ms
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._buffer = ""
        self.joules: dict[str, float] = {}
        self._power = 0.0
        self._watts: dict[str, float] = {}

    def available(self) -> tuple[bool, str]:
        return powermetrics_available()

    def open(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="siliconlab-powermetrics-")
        self._output = Path(self._folder.name) / "samples.txt"
        command = [*_command(), "-i", str(self.interval_ms), "-b", "1", "-o", str(self._output)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._offset, self._buffer, self.joules = 0, "", {"combined": 0.0}

    def feed(self, text: str) -> None:
        """Account for newly written output (separate from the file so tests can drive it)."""
        samples, self._buffer = take_complete(self._buffer + text)
        for sample in samples:
            for rail, watts in sample.watts.items():
                self.joules[rail] = self.joules.get(rail, 0.0) + watts * sample.seconds
            self._power = sample.watts["combined"]
            self._watts = {rail: watts for rail, watts in sample.watts.items() if rail != "combined"}

    def read(self) -> dict[str, float]:
        if self._process is not None and self._output.exists():
            with self._output.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
            self._offset += len(chunk)
            self.feed(chunk.decode(errors="replace"))
        if self._process is not None and self._process.poll() is not None and self._process.returncode != 0:
            raise RuntimeError(f"powermetrics exited with status {self._process.returncode}")
        readings = {f"{rail}_j": joules for rail, joules in self.joules.items() if rail != "combined"}
        readings |= {f"{rail}_w": watts for rail, watts in self._watts.items()}  # the last complete sample's
        return {"energy_j": self.joules.get("combined", 0.0), "power_w": self._power, **readings}

    def close(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)  # sudo relays it; powermetrics flushes and exits
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
