"""`siliconlab monitor` and `siliconlab plot` end to end: exits by itself, passes exit codes through, records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.monitor.recording import read_recording

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


def test_monitor_with_a_duration_exits_by_itself():
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "siliconlab", "monitor", "--duration", "1", "--interval", "0.25"],
                          capture_output=True, text=True, timeout=60, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - begin < 30
    assert "siliconlab monitor" in done.stdout and "CPU" in done.stdout and "Memory" in done.stdout
    assert "polls in" in done.stderr


@pytest.mark.parametrize("code", [0, 3])
def test_command_exit_code_is_passed_through(tmp_path: Path, code: int):
    record = tmp_path / "run.csv"
    command = [sys.executable, "-c", f"import sys, time; time.sleep(0.5); sys.exit({code})"]
    result = CliRunner().invoke(app, ["monitor", "--interval", "0.1", "--record", str(record), "--", *command])
    assert result.exit_code == code, result.output
    data = read_recording(record)
    assert len(data["t_s"]) >= 2  # the first poll and the one at stop, at least (a busy VM may delay the rest)
    assert any(v == v for v in data["proc.rss_mb"])  # the watched command's memory was read (not all NaN)


def test_dashboard_run_keeps_the_command_output(tmp_path: Path):
    result = CliRunner().invoke(app, ["monitor", "--interval", "0.1", "--", sys.executable, "-c", "print('hello')"])
    assert result.exit_code == 0, result.output
    assert "hello" in result.output and "command output:" in result.output


def test_record_then_plot(tmp_path: Path):
    record = tmp_path / "run.parquet"
    assert CliRunner().invoke(app, ["monitor", "--record", str(record), "--duration", "0.6", "--interval", "0.1"]
                              ).exit_code == 0  # fmt: skip
    plotted = CliRunner().invoke(app, ["plot", str(record)])
    assert plotted.exit_code == 0, plotted.output
    png = record.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["monitor", "--interval", "0"], "--interval must be > 0"),
        (["monitor", "--record", "x.txt"], "takes a .csv or .parquet"),
        (["monitor", "--pid", "1", "--", "true"], "either --pid or -- COMMAND"),
        (["monitor", "--", "no-such-command-here"], "command not found: no-such-command-here"),
        (["plot", "missing.csv"], "no such recording"),
        (["plot", "x.csv", "--out", "x.jpg"], "must name a .png"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
