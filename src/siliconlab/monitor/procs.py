"""CPU taken by processes outside the benchmark: who else is using this machine while we time?

`OtherProcesses(pids)` splits the CPU time spent since its previous read into `own_cores` (the given pids and
all their descendants: the bench passes its own pid, its workers follow as children) and `other_cores` /
`other_pct` (everything else; pct is of the whole machine). It needs one scan of every process per read, the
most expensive load reading: on Linux /proc/<pid>/stat is read directly (4-8x cheaper than psutil's
per-process objects, measured on the 2-core dev VM: ~10-25 ms against ~75-150 ms for ~100 processes); other
systems use psutil. Processes are keyed by (pid, start time), so a reused pid is a new process, and a process
absent from the previous scan started since, so all its CPU time falls in the interval. A process that starts
and ends between two reads is not seen (its CPU still shows in `cpu.busy_pct`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

from siliconlab.monitor.sampler import Source

#: Shorter intervals than this give no figure (the baseline is kept): scan timing noise would dominate them.
MIN_INTERVAL_S = 0.05
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: {(pid, start): (cpu seconds, parent pid)}
Snapshot = dict[tuple[int, float], tuple[float, int]]


def parse_pid_stat(text: str) -> tuple[float, int, float]:
    """(user+system CPU seconds, ppid, start ticks) from /proc/<pid>/stat; the name may hold spaces and ')'."""
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[1]), float(fields[19])


def _linux_snapshot(proc: Path = Path("/proc")) -> Snapshot:
    snapshot: Snapshot = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            cpu, ppid, start = parse_pid_stat((proc / entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # exited during the scan
            continue
        snapshot[(int(entry), start)] = (cpu, ppid)
    return snapshot


def _psutil_snapshot() -> Snapshot:
    snapshot: Snapshot = {}
    for proc in psutil.process_iter(["cpu_times", "ppid"]):
        times, ppid = proc.info["cpu_times"], proc.info["ppid"]
        try:
            start = proc.create_time()
        except psutil.Error:
            continue
        if times is not None and ppid is not None:
            snapshot[(proc.pid, start)] = (times.user + times.system, ppid)
    return snapshot


def descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    """`roots` and every pid whose chain of parents reaches one of them."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(roots), list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


class OtherProcesses(Source):
    """`other_cores`, `other_pct`, `own_cores` since the previous read; `top`: the 3 biggest others (pid, name,
    cores). `pids` is a collection or a callable returning one, so the caller can add pids as it spawns them."""

    name = "procs"

    def __init__(self, pids: Iterable[int] | Callable[[], Iterable[int]] = ()):
        self._pids = pids
        self._scan = _linux_snapshot if sys.platform.startswith("linux") and Path("/proc/self/stat").exists() else None
        self._previous: Snapshot = {}
        self._previous_t = 0.0
        self.top: list[tuple[int, str, float]] = []

    def available(self) -> tuple[bool, str]:
        try:
            self._snapshot()
        except Exception as exc:
            return False, f"cannot list processes: {exc}"
        return True, ""

    def _snapshot(self) -> Snapshot:
        return self._scan() if self._scan is not None else _psutil_snapshot()

    def open(self) -> None:
        self._previous_t, self._previous = time.monotonic(), self._snapshot()

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        elapsed = now - self._previous_t
        if elapsed < MIN_INTERVAL_S:
            return {}
        snapshot, previous = self._snapshot(), self._previous
        self._previous_t, self._previous = now, snapshot
        roots = set(self._pids() if callable(self._pids) else self._pids)
        own = descendants(roots, {pid: ppid for (pid, _), (_, ppid) in snapshot.items()})
        other, mine, others = 0.0, 0.0, []
        for key, (used, _) in snapshot.items():
            delta = max(0.0, used - previous[key][0]) if key in previous else used
            if key[0] in own:
                mine += delta
            elif delta > 0:
                other += delta
                others.append((delta, key[0]))
        others.sort(reverse=True)
        self.top = [(pid, _name(pid), delta / elapsed) for delta, pid in others[:3]]
        return {
            "other_cores": other / elapsed,
            "other_pct": 100.0 * other / elapsed / float(os.cpu_count() or 1),
            "own_cores": mine / elapsed,
        }


def _name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"
