"""CpuClock, WatchedProcess and the per-core source against psutil on this machine (a 2-vCPU VM, busy)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from siliconlab.monitor.load import PerCore
from siliconlab.monitor.sampler import Sampler
from siliconlab.monitor.system import CpuClock, WatchedProcess

SPIN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


def test_cpu_clock_matches_psutil():
    clock = CpuClock()
    assert clock.available() == (True, "")
    readings = clock.read()
    expected = [f.current for f in psutil.cpu_freq(percpu=True)]
    assert [readings[f"cpu{i}_mhz"] for i in range(len(expected))] == pytest.approx(expected, rel=0.05)
    assert readings["min_mhz"] <= readings["mean_mhz"] <= readings["max_mhz"]


def test_per_core_busy_matches_psutil_over_the_same_interval():
    source = PerCore(min_interval=0.0)
    source.open()
    psutil.cpu_percent(percpu=True)
    time.sleep(0.5)
    ours, theirs = source.read(), psutil.cpu_percent(percpu=True)
    assert len(ours) == psutil.cpu_count() == len(theirs)
    # the same kernel counters over (nearly) the same half second; psutil counts steal as busy, we do not
    assert all(abs(ours[f"cpu{i}_busy_pct"] - theirs[i]) < 25 for i in range(len(theirs)))


def test_watched_process_counts_its_children():
    """A parent that sleeps with one spinning child: the tree's CPU is the child's, RSS and threads add up."""
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {SPIN!r}])\ntime.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 10
        while not psutil.Process(parent.pid).children() and time.time() < deadline:
            time.sleep(0.05)
        source = WatchedProcess(parent.pid)
        assert source.available() == (True, "")
        source.open()
        time.sleep(1.0)
        readings = source.read()
        tree = [psutil.Process(parent.pid), *psutil.Process(parent.pid).children(recursive=True)]
        assert readings["processes"] == len(tree) == 2
        assert readings["threads"] == sum(p.num_threads() for p in tree)
        assert readings["rss_mb"] == pytest.approx(sum(p.memory_info().rss for p in tree) / 2**20, rel=0.2)
        assert readings["cpu_pct"] > 15  # the child spins on a core it shares with other agents' work
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
    with pytest.raises(RuntimeError, match="has exited"):
        source.read()


def test_a_finished_process_is_set_aside_not_fatal():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    with Sampler([WatchedProcess(child.pid)], interval=0.05) as sampler:
        child.wait()
        time.sleep(0.4)
    assert "has exited" in sampler.unavailable["proc"] or "no process" in sampler.unavailable["proc"]
    assert WatchedProcess(2**22 + 7).available() == (False, f"no process with pid {2**22 + 7}")
