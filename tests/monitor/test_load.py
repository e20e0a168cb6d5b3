"""Machine-load sources: /proc/stat parsing on a recorded sample, and each source against psutil on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from siliconlab.monitor.load import (
    CpuFrequency,
    LoadAverage,
    Memory,
    PerCore,
    ProcStat,
    cpu_shares,
    load_sources,
    parse_proc_stat,
)
from siliconlab.monitor.procs import OtherProcesses, descendants, parse_pid_stat
from siliconlab.monitor.sampler import Sampler

# /proc/stat of a 2-vCPU KVM guest, then ~1.1 s later (USER_HZ 100: 220 ticks over both CPUs, 40 of them stolen).
PROC_STAT_BEFORE = """\
cpu  27776 0 4826 45043 661 0 174 622 0 0
cpu0 5514 0 1511 31918 181 0 66 339 0 0
cpu1 22262 0 3314 13125 480 0 107 283 0 0
intr 228609 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 10 0 0 0 0 78 57 0 19 1 17912 0 4860 2933
ctxt 248482
btime 1764170758
processes 4521
procs_running 3
procs_blocked 0
softirq 101342 0 28514 4 7316 11520 0 1090 27012 0 25886
"""
PROC_STAT_AFTER = """\
cpu  27896 2 4856 45063 665 0 178 662 0 0
cpu0 5574 2 1526 31938 183 0 68 359 0 0
cpu1 22322 0 3329 13125 482 0 109 303 0 0
intr 229811 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 10 0 0 0 0 78 57 0 19 1 18004 0 4871 2940
ctxt 250113
btime 1764170758
processes 4530
procs_running 4
procs_blocked 0
softirq 101901 0 28655 4 7350 11588 0 1090 27214 0 25999
"""
LINUX = sys.platform.startswith("linux")


def test_proc_stat_parsing_and_shares_from_a_recorded_sample():
    before, after = parse_proc_stat(PROC_STAT_BEFORE), parse_proc_stat(PROC_STAT_AFTER)
    assert set(before) == {"cpu", "cpu0", "cpu1"}
    assert before["cpu"]["steal"] == 622 and before["cpu1"]["user"] == 22262 and before["cpu"]["guest_nice"] == 0
    shares = cpu_shares(before["cpu"], after["cpu"])
    # deltas: user 120, nice 2, system 30, idle 20, iowait 4, softirq 4, steal 40 -> 220 ticks
    assert shares["busy_pct"] == pytest.approx(100 * 156 / 220)
    assert shares["steal_pct"] == pytest.approx(100 * 40 / 220)
    assert shares["iowait_pct"] == pytest.approx(100 * 4 / 220) and shares["idle_pct"] == pytest.approx(100 * 20 / 220)
    assert cpu_shares(before["cpu"], before["cpu"]) == {}  # no time passed: no figure rather than 0/0
    assert parse_proc_stat("cpu  1 2 3 4\n")["cpu"]["steal"] == 0  # old kernels print fewer fields


def test_proc_stat_source_reads_deltas_from_a_file(tmp_path: Path):
    stat = tmp_path / "stat"
    stat.write_text(PROC_STAT_BEFORE)
    source = ProcStat(stat, min_interval=0.0)
    assert source.available() == (True, "")
    source.open()
    stat.write_text(PROC_STAT_AFTER)
    assert source.read()["steal_pct"] == pytest.approx(100 * 40 / 220)
    assert source.read() == {}  # the same file again: no time passed, so no figure
    assert ProcStat(tmp_path / "none").available()[0] is False


@pytest.mark.skipif(not LINUX, reason="/proc/stat is Linux-only")
def test_proc_stat_on_this_machine_adds_up():
    source = ProcStat()
    source.open()
    time.sleep(0.2)
    shares = source.read()
    assert sum(shares.values()) == pytest.approx(100.0)
    assert all(0.0 <= value <= 100.0 for value in shares.values())


def test_load_average_memory_and_cores_agree_with_psutil():
    load = LoadAverage().read()
    assert load["load_1m"] == pytest.approx(os.getloadavg()[0], abs=1.0) and load["cores"] == os.cpu_count()
    memory = Memory().read()
    total = psutil.virtual_memory().total / 2**20
    assert memory["used_mb"] + memory["available_mb"] == pytest.approx(total, rel=1e-6)
    assert memory["swap_used_mb"] == pytest.approx(psutil.swap_memory().used / 2**20, abs=64)
    cores = PerCore()
    cores.open()
    time.sleep(0.1)
    per_core = cores.read()
    assert sorted(per_core) == sorted(f"cpu{i}_busy_pct" for i in range(psutil.cpu_count()))
    assert all(0.0 <= value <= 100.0 for value in per_core.values())


def test_other_processes_separates_our_pids_from_the_rest():
    """A busy child of this process counts as ours when this pid is given, as 'other' when it is not."""
    ours, nobody = OtherProcesses([os.getpid()]), OtherProcesses(lambda: [])
    ours.open()
    nobody.open()
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 5: pass"])
    try:
        time.sleep(0.8)
        mine, theirs = ours.read(), nobody.read()
        spent = psutil.Process(child.pid).cpu_times()
        child_cores = (spent.user + spent.system) / (time.monotonic() - started)
    finally:
        child.kill()
        child.wait()
    assert child_cores > 0.05, "the child never ran: the machine is too busy for this check"
    assert mine["own_cores"] == pytest.approx(child_cores, abs=0.12), (mine, child_cores)
    assert theirs["own_cores"] == 0.0 and theirs["other_cores"] >= child_cores - 0.12
    assert theirs["other_pct"] == pytest.approx(100 * theirs["other_cores"] / os.cpu_count())
    assert len(nobody.top) <= 3 and all(cores > 0 for _, _, cores in nobody.top)


def test_pid_stat_parsing_and_descendants():
    # a real /proc/<pid>/stat line, its comm rewritten to hold a space and a ')' as process names may
    line = (
        "4242 (my worker) 1) S 4200 4242 4200 0 -1 4194304 3210 0 0 0 250 50 0 0 20 0 9 0 123456 "
        "1811939328 61440 18446744073709551615 1 1 0 0 0 0 0 4096 1260 0 0 0 17 1 0 0 0 0 0"
    )
    cpu_seconds, ppid, start = parse_pid_stat(line)
    assert (cpu_seconds, ppid, start) == (pytest.approx(300 / os.sysconf("SC_CLK_TCK")), 4200, 123456.0)
    parents = {10: 1, 11: 10, 12: 11, 13: 1, 14: 13}
    assert descendants({10}, parents) == {10, 11, 12} and descendants(set(), parents) == set()


def test_delta_sources_give_no_figure_from_a_too_short_interval():
    source = PerCore()
    source.open()
    assert source.read() == {}  # right after open: the baseline is kept, not replaced
    time.sleep(0.06)
    assert len(source.read()) == psutil.cpu_count()


def test_cpu_frequency_from_a_fake_sysfs_and_its_absence(tmp_path: Path):
    for index, khz in enumerate((2_000_000, 3_000_000)):
        folder = tmp_path / f"cpu{index}" / "cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(f"{khz}\n")
    assert CpuFrequency(tmp_path).read() == {"mean_mhz": 2500.0, "min_mhz": 2000.0, "max_mhz": 3000.0}
    empty = CpuFrequency(tmp_path / "none")
    assert empty.available() == (False, f"no cpufreq: {tmp_path / 'none'}/cpu*/cpufreq does not exist (common in VMs)")


def test_all_load_sources_in_one_sampler_on_this_machine():
    with Sampler(load_sources([os.getpid()]), interval=0.1) as sampler:
        time.sleep(0.35)
    summary = sampler.summary()
    readings = summary["readings"]
    assert summary["errors"] == {}
    for key in ("loadavg.load_1m", "memory.used_mb", "procs.other_cores", "cores.cpu0_busy_pct"):
        assert key in readings, key
    if LINUX:
        assert "cpu.steal_pct" in readings
    if not Path("/sys/devices/system/cpu/cpu0/cpufreq").exists():
        assert summary["unavailable"]["cpufreq"].startswith("no cpufreq:")
