"""Stages of a long first run (convert, calibrate, parity check, load), reported as they are measured.

Why at the bottom: the converter, the units and the model sources know what they are doing and how many texts
a stage has; only the fronts know how to draw it. So the lower layers open stages and count their work here,
and whoever called them installs a callback (`reporting`): the CLI draws rich bars, the API stays quiet
unless asked (`siliconlab.load(..., progress=True)`), and with no callback each finished stage is one INFO
record on the `siliconlab.progress` logger (silent unless the caller's logging shows INFO). An ETA is the
caller's to extrapolate from `done`, `total` and `elapsed_s`: nothing here guesses a duration.

`shown_stages` is the picture the CLI and `load(progress=True)` share: rich bars redrawn in place on a terminal;
on a pipe or log, where a redrawn bar would be hundreds of carriage returns, one line per finished stage.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

progress_log = logging.getLogger("siliconlab.progress")


@dataclass(frozen=True)
class StageEvent:
    """One moment of a stage: opened (done 0), work counted, or finished (elapsed is the stage's whole time)."""

    stage_id: int
    label: str
    done: int
    total: int | None  # None: the stage cannot count its work (a conversion); elapsed time is what it shows
    elapsed_s: float
    finished: bool = False
    unit_name: str = "texts"


#: What a front passes down: called from the working thread on every event.
ProgressCallback = Callable[[StageEvent], None]


@dataclass
class _Stage:
    stage_id: int
    label: str
    total: int | None
    unit_name: str
    callback: ProgressCallback | None
    started: float = field(default_factory=time.perf_counter)
    done: int = 0

    def event(self, finished: bool = False) -> StageEvent:
        return StageEvent(self.stage_id, self.label, self.done, self.total, time.perf_counter() - self.started,
                          finished, self.unit_name)  # fmt: skip

    def emit(self, finished: bool = False) -> None:
        if self.callback is not None:
            self.callback(self.event(finished))


_callback: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar("siliconlab_progress", default=None)
_open: contextvars.ContextVar[tuple[_Stage, ...]] = contextvars.ContextVar("siliconlab_stages", default=())
_ids = iter(range(1, 1 << 62))


@contextmanager
def reporting(callback: ProgressCallback | None) -> Iterator[None]:
    """Send the stages opened inside this block (in this thread or context) to `callback`."""
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


@contextmanager
def stage(label: str, total: int | None = None, unit_name: str = "texts") -> Iterator[None]:
    """A stage of work: opened, counted with `advance`, finished when the block ends (also on an error)."""
    current = _Stage(next(_ids), label, total, unit_name, _callback.get())
    token = _open.set((*_open.get(), current))
    current.emit()
    try:
        yield
    finally:
        _open.reset(token)
        current.emit(finished=True)
        if current.callback is None:
            counted = f", {current.done} {unit_name}" if current.total else ""
            progress_log.info("%s: %.1f s%s", label, time.perf_counter() - current.started, counted)


def expect(total: int, unit_name: str | None = None) -> None:
    """Set how much work the innermost open stage has, and what it counts (the code doing it knows; the one
    opening it may not)."""
    stages = _open.get()
    if stages:
        stages[-1].total = total
        if unit_name:
            stages[-1].unit_name = unit_name
        stages[-1].emit()


def advance(steps: int = 1) -> None:
    """Count `steps` items of the innermost open stage as done; nothing when no stage is open."""
    stages = _open.get()
    if stages:
        stages[-1].done += steps
        stages[-1].emit()


#: Stages that end sooner than this leave no line or bar behind.
SHOWN_AFTER_S = 0.5


def _count(event: StageEvent) -> str:
    """'8/308 texts', or '4 trials' for a stage that counts without knowing its total, or ''."""
    if event.total:
        return f"{event.done}/{event.total} {event.unit_name}"
    return f"{event.done} {event.unit_name}" if event.done else ""


class StageLines:
    """Not a terminal: one line per stage, when it finishes, with its measured time and count."""

    def __init__(self, console: Any):
        self.console = console

    def __call__(self, event: StageEvent) -> None:
        if not event.finished or event.elapsed_s < SHOWN_AFTER_S:
            return
        counted = f" ({_count(event)})" if _count(event) else ""
        self.console.print(f"stage {event.label}: {event.elapsed_s:.1f} s{counted}", highlight=False, soft_wrap=True)


class StageBars:
    """A terminal: one bar per open stage (counted stages extrapolate their ETA from the rate so far; the others
    show elapsed time), kept when it took long enough to matter. The live display runs only while a stage is
    open, so what a command prints between loads (the demo's answers) is never drawn over."""

    def __init__(self, console: Any):
        self.console = console
        self.progress: Any = None
        self.tasks: dict[int, Any] = {}
        self.lock = threading.Lock()

    def _started(self) -> Any:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        if self.progress is None:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                                     TextColumn("{task.fields[count]}"), TimeElapsedColumn(), TextColumn("eta"),
                                     TimeRemainingColumn(), console=self.console, transient=False)  # fmt: skip
            self.progress.start()
        return self.progress

    def __call__(self, event: StageEvent) -> None:
        with self.lock:
            task = self.tasks.get(event.stage_id)
            if task is None and event.finished:
                return
            progress = self._started()
            count = _count(event)
            if task is None:
                task = self.tasks[event.stage_id] = progress.add_task(event.label, total=event.total, count=count)
            if not event.finished:
                progress.update(task, total=event.total, completed=event.done, count=count)
                return
            del self.tasks[event.stage_id]
            if event.elapsed_s < SHOWN_AFTER_S:
                progress.remove_task(task)
            else:
                total = event.total or 1
                progress.update(task, total=total, completed=total, count=count)
                progress.stop_task(task)
            if not self.tasks:  # nothing open: leave the finished bars on screen and stop redrawing
                self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@contextmanager
def shown_stages(console: Any = None) -> Iterator[None]:
    """Show the stages run inside this block on a rich `console` (default: stderr): bars with a measured ETA on a
    terminal, one line per finished stage otherwise — never on stdout, which is the answer."""
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, soft_wrap=True)
    if not console.is_terminal:
        with reporting(StageLines(console)):
            yield
        return
    bars = StageBars(console)
    try:
        with reporting(bars):
            yield
    finally:
        bars.close()
