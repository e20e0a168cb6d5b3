"""CPU package energy from RAPL through Linux powercap sysfs (Intel, and AMD under the same intel-rapl name).

Each package domain `intel-rapl:N` has `energy_uj`, a microjoule counter that wraps at `max_energy_range_uj`.
`RaplSource` turns it into cumulative joules since open(), correcting one wrap between two reads (at 100 W a
typical 262 kJ range wraps every ~40 minutes, so any polling interval is fine). Sub-domains (`intel-rapl:N:M`:
cores, uncore, dram) are inside the package figure and are not added again. The counter is system-wide.
"""

from __future__ import annotations

import glob
from pathlib import Path

from siliconlab.monitor.sampler import Source

POWERCAP = Path("/sys/class/powercap")


def rapl_domains(root: Path = POWERCAP) -> tuple[list[Path], str]:
    """Top-level package domains (intel-rapl:N, also used for AMD); the reason when there are none."""
    if not root.is_dir():
        return [], f"no RAPL: {root} does not exist"
    domains = [Path(p) for p in sorted(glob.glob(str(root / "intel-rapl:[0-9]*"))) if Path(p).name.count(":") == 1]
    if not domains:
        return [], f"no RAPL: {root} has no intel-rapl package domain (common in VMs)"
    unreadable = [d for d in domains if not _readable(d / "energy_uj")]
    if unreadable:
        return [], f"no RAPL: {unreadable[0] / 'energy_uj'} is not readable (needs root)"
    return domains, ""


def _readable(path: Path) -> bool:
    try:
        int(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def counter_delta(before: int, after: int, modulus: int) -> int:
    """after - before for a counter that wraps at `modulus`, assuming at most one wrap in between."""
    delta = after - before
    return delta + modulus if delta < 0 else delta


class RaplSource(Source):
    """Readings: `energy_j` (all packages) and `<domain>_j` per package, cumulative since open()."""

    name = "rapl"

    def __init__(self, root: Path = POWERCAP):
        self.root = root
        self.domains, self.reason = rapl_domains(root)
        self._raw: list[int] = []
        self._joules: list[float] = []

    def available(self) -> tuple[bool, str]:
        return (True, "") if self.domains else (False, self.reason)

    def _read_raw(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    def open(self) -> None:
        self._raw = self._read_raw()
        self._joules = [0.0] * len(self.domains)

    def read(self) -> dict[str, float]:
        if not self._raw:
            self.open()
        raw = self._read_raw()
        for index, (domain, before, after) in enumerate(zip(self.domains, self._raw, raw)):
            # the range is only read when the counter wrapped
            modulus = int((domain / "max_energy_range_uj").read_text()) if after < before else 0
            self._joules[index] += counter_delta(before, after, modulus) / 1e6
        self._raw = raw
        readings = {f"{_label(d)}_j": j for d, j in zip(self.domains, self._joules)}
        return {"energy_j": sum(self._joules), **readings}


def _label(domain: Path) -> str:
    """The domain's own name ('package-0') when sysfs gives one, else its directory name."""
    try:
        return (domain / "name").read_text().strip() or domain.name
    except OSError:
        return domain.name
