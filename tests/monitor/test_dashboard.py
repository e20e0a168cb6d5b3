"""The dashboard frame, rendered by rich's recording console from real polls of this machine plus the H100
recording, and the missing sensors listed with their reasons."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from recorded_nvml import RECORDING, RecordedNvml

from siliconlab.monitor.dashboard import View, latest_values, render_text
from siliconlab.monitor.gpu import NvmlGpu
from siliconlab.monitor.sampler import Sampler
from siliconlab.monitor.sources import monitor_sources


def test_frame_shows_every_core_memory_the_watched_process_and_missing_sensors():
    sources = monitor_sources(watched=psutil.Process().pid)
    with Sampler(sources, interval=0.1) as sampler:
        time.sleep(0.35)
    view = View(values=latest_values(sampler.samples), unavailable=sampler.unavailable, watching="pid 1: pytest",
                interval_s=0.1, output=["step 3/3 done"])  # fmt: skip
    text = render_text(view, width=120)
    for core in range(psutil.cpu_count()):
        assert f"cpu{core} " in text
    assert "busy" in text and "steal" in text and "RAM" in text and "swap" in text
    assert "Watched process" in text and "RSS" in text and "step 3/3 done" in text
    for name, reason in sampler.unavailable.items():  # e.g. no cpufreq, no RAPL, no NVML here
        assert f"{name}: unavailable — {reason[:40]}" in text.replace("\n", "")
    assert "MHz" in text  # psutil's clock (cpufreq or /proc/cpuinfo)


def test_frame_shows_the_gpu_row_from_the_h100_recording():
    with Sampler([NvmlGpu(0, nvml=RecordedNvml(RECORDING))], interval=0.05) as sampler:
        time.sleep(0.6)
    view = View(values=latest_values(sampler.samples), gpu_names={0: "NVIDIA H100 80GB HBM3"})
    text = render_text(view, width=140)
    assert "NVIDIA GPUs (NVML)" in text and "NVIDIA H100 80GB HBM3" in text
    assert "/700 W" in text and "/1980 MHz" in text and "/80 GiB" in text
    assert "idle" in text or "none" in text  # the throttle column decodes NVML's reasons
    assert "<svg" in render_text(view, svg=True)


def test_latest_values_keep_a_reading_a_poll_skipped():
    class Poll:
        def __init__(self, values):
            self.values = values

    assert latest_values([Poll({"a": 1.0, "b": 2.0}), Poll({"a": 3.0})]) == {"a": 3.0, "b": 2.0}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: the terminal check needs a pane")
def test_dashboard_draws_in_a_real_terminal(tmp_path):
    """`siliconlab monitor` in a tmux pane (its own tmux server socket), read back with capture-pane."""
    socket = f"siliconlab-test-{os.getpid()}"
    src = Path(__file__).resolve().parents[2] / "src"
    command = f"PYTHONPATH={src} {sys.executable} -m siliconlab monitor --duration 6 --interval 0.25; sleep 30"
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "60", command], check=True)
    try:
        screen, deadline = "", time.time() + 40
        while time.time() < deadline and not ("Memory" in screen and "cpu0" in screen and "%" in screen):
            time.sleep(0.5)
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
        assert "siliconlab monitor" in screen and "cpu0" in screen and "RAM" in screen, screen
        assert "unavailable —" in screen or "NVIDIA GPUs" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
