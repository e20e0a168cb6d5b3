"""One `siliconlab monitor` run: start the Sampler, optionally run or attach to a process, show or record.

The Sampler polls in its own thread; this loop wakes every interval, hands the new polls to the recorder
(headless) or renders the newest one (dashboard), and stops when the duration is up, the watched command or
pid ends, or on Ctrl-C. A watched command's exit code is the run's exit code (128 + N for a signal N).
With the dashboard on, the command's output is piped into the dashboard's last-lines panel and kept whole in
a log file (its path is printed at the end), so the frame is not torn by it; headless, it passes through.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from siliconlab.monitor.dashboard import View, latest_values, render
from siliconlab.monitor.recording import Recorder, check_path
from siliconlab.monitor.sampler import Sampler
from siliconlab.monitor.sources import monitor_sources

OUTPUT_LINES = 8


@dataclass
class MonitorOptions:
    interval: float = 0.5
    record: Path | None = None
    duration: float | None = None
    pid: int | None = None
    command: list[str] | None = None
    dashboard: bool = True


def check(options: MonitorOptions) -> None:
    """Bad options raise ValueError with one line, before anything starts."""
    if options.interval <= 0:
        raise ValueError(f"--interval must be > 0 seconds, got {options.interval:g}")
    if options.duration is not None and options.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {options.duration:g}")
    if options.pid is not None and options.command:
        raise ValueError("give either --pid or -- COMMAND, not both")
    if options.pid is not None and not psutil.pid_exists(options.pid):
        raise ValueError(f"no process with pid {options.pid}")
    if options.record is not None:
        check_path(options.record)


class _Output:
    """The watched command's merged stdout/stderr: the last lines for the dashboard, everything in a log file."""

    def __init__(self, stream: IO[bytes]):
        self.lines: deque[str] = deque(maxlen=OUTPUT_LINES)
        handle, name = tempfile.mkstemp(prefix="siliconlab-monitor-", suffix=".log")
        self.log, self.path = os.fdopen(handle, "wb"), Path(name)
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.log.write(raw)
            self.log.flush()
            self.lines.append(raw.decode(errors="replace").rstrip()[-200:])

    def close(self) -> None:
        self._thread.join(timeout=5)
        self.log.close()


def _exit_code(returncode: int) -> int:
    return 128 + -returncode if returncode < 0 else returncode


class MonitorRun:
    """run() -> exit code. `say` prints one line (the CLI passes its stderr console)."""

    def __init__(self, options: MonitorOptions, console: Any, say: Callable[[str], None] = print):
        check(options)
        self.options, self.console, self.say = options, console, say
        self.child: subprocess.Popen[bytes] | None = None
        self.output: _Output | None = None
        self.recorder = Recorder(options.record) if options.record else None
        self.watched = options.pid
        self.started = time.perf_counter()

    def _start_command(self) -> None:
        command = self.options.command or []
        piped = self.options.dashboard
        try:
            self.child = subprocess.Popen(command, stdout=subprocess.PIPE if piped else None,
                                          stderr=subprocess.STDOUT if piped else None)  # fmt: skip
        except FileNotFoundError:
            raise ValueError(f"command not found: {command[0]}") from None
        except PermissionError:
            raise ValueError(f"command not executable: {command[0]}") from None
        if piped and self.child.stdout is not None:
            self.output = _Output(self.child.stdout)
        self.watched = self.child.pid

    def _finished(self) -> bool:
        if self.options.duration is not None and time.perf_counter() - self.started >= self.options.duration:
            return True
        if self.child is not None:
            return self.child.poll() is not None
        return self.watched is not None and not psutil.pid_exists(self.watched)

    def _view(self, sampler: Sampler, procs: Any) -> View:
        latest = sampler.samples[-1] if sampler.samples else None
        gpus = {int(s.name[3:]): device for s in sampler.sources
                if s.name.startswith("gpu") and (device := getattr(s, "device_name", ""))}  # fmt: skip
        summary_cost = latest.cost_s * 1e3 if latest else 0.0
        watching = ""
        if self.child is not None:
            watching = f"pid {self.child.pid}: {shlex.join(self.options.command or [])}"
        elif self.watched is not None:
            watching = f"pid {self.watched}"
        return View(values=latest_values(sampler.samples), unavailable=dict(sampler.unavailable),
                    top=list(procs.top) if procs is not None else [], watching=watching,
                    elapsed_s=time.perf_counter() - self.started, interval_s=self.options.interval,
                    sampler_ms=summary_cost, gpu_names=gpus, output=list(self.output.lines) if self.output else [],
                    recording=str(self.options.record or ""))  # fmt: skip

    def run(self) -> int:
        if self.options.command:
            self._start_command()
        sources = monitor_sources(self.watched)
        procs = next((s for s in sources if s.name == "procs"), None)
        sampler = Sampler(sources, interval=self.options.interval, capacity=10_000)
        interrupted = False
        sampler.start()
        seen = 0.0
        try:
            if self.options.dashboard:
                from rich.live import Live

                with Live(render(self._view(sampler, procs)), console=self.console, auto_refresh=False,
                          transient=False) as live:  # fmt: skip
                    while not self._finished():
                        time.sleep(min(self.options.interval, 0.25))
                        seen = self._drain(sampler, seen)
                        live.update(render(self._view(sampler, procs)), refresh=True)
            else:
                while not self._finished():
                    time.sleep(min(self.options.interval, 0.25))
                    seen = self._drain(sampler, seen)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sampler.stop()
            self._drain(sampler, seen)
            code = self._finish(interrupted)
        self._report(sampler)
        return code

    def _drain(self, sampler: Sampler, seen: float) -> float:
        """Give the recorder every poll newer than `seen`; the newest poll's time."""
        for sample in list(sampler.samples):
            if sample.t > seen:
                if self.recorder is not None:
                    self.recorder.add(sample)
                seen = sample.t
        return seen

    def _finish(self, interrupted: bool) -> int:
        """Close the recording; stop (if still running) and reap the watched command; the exit code."""
        if self.recorder is not None:
            self.recorder.close()
        if self.child is None:
            return 130 if interrupted else 0
        if self.child.poll() is None:  # --duration ran out or Ctrl-C: the command is ours to stop
            self.child.send_signal(signal.SIGINT)
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        if self.output is not None:
            self.output.close()
        return _exit_code(self.child.returncode)

    def _report(self, sampler: Sampler) -> None:
        summary = sampler.summary()
        cost = summary["cpu_ms"]["mean"]
        self.say(f"monitor: {summary['samples']} polls in {summary['seconds']:.1f} s, {cost:.1f} ms CPU per poll")
        if self.recorder is not None:
            self.say(f"recording: {self.recorder.path} ({len(self.recorder.rows)} rows)")
        if self.output is not None:
            self.say(f"command output: {self.output.path}")
        if self.child is not None:
            self.say(f"command exited with {_exit_code(self.child.returncode)}")
