"""Stages as the lower layers report them (siliconlab/progress.py) and the two pictures the fronts draw."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from siliconlab.progress import StageBars, StageEvent, StageLines, advance, expect, reporting, shown_stages, stage


def test_a_stage_reports_open_counts_and_finish_to_the_installed_callback():
    events: list[StageEvent] = []
    with reporting(events.append), stage("reference", total=None):
        expect(3)
        advance()
        advance(2)
    assert [(e.done, e.total, e.finished) for e in events] == [(0, None, False), (0, 3, False), (1, 3, False),
                                                                (3, 3, False), (3, 3, True)]  # fmt: skip
    assert len({e.stage_id for e in events}) == 1 and events[-1].elapsed_s >= 0


def test_advance_counts_the_innermost_stage_and_nothing_outside_one():
    events: list[StageEvent] = []
    advance()  # no stage open: nothing happens, nothing raises
    with reporting(events.append), stage("outer"), stage("inner", total=2):
        advance()
    counted = {e.label: e.done for e in events if e.finished}
    assert counted == {"inner": 1, "outer": 0}


def test_a_stage_finishes_even_when_its_work_raises():
    events: list[StageEvent] = []
    with pytest.raises(RuntimeError), reporting(events.append), stage("convert"):
        raise RuntimeError("exporter crashed")
    assert events[-1].finished and events[-1].label == "convert"


def test_without_a_callback_a_finished_stage_is_one_info_record(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="siliconlab.progress"), stage("parity check", total=1):
        advance()
    assert any("parity check" in r.getMessage() and "1 texts" in r.getMessage() for r in caplog.records)


def test_lines_show_each_long_enough_stage_once_with_its_time_and_count():
    out = io.StringIO()
    lines = StageLines(Console(file=out, width=200))
    lines(StageEvent(1, "sentiment: fp32 reference outputs", 8, 308, 0.1))  # not finished: no line
    lines(StageEvent(1, "sentiment: fp32 reference outputs", 308, 308, 2.5, finished=True))
    lines(StageEvent(2, "cached artifact", 0, None, 0.01, finished=True))  # instant: no line
    assert out.getvalue().splitlines() == ["stage sentiment: fp32 reference outputs: 2.5 s (308/308 texts)"]


def test_bars_run_only_while_a_stage_is_open():
    out = io.StringIO()
    bars = StageBars(Console(file=out, force_terminal=True, width=120))
    bars(StageEvent(1, "parity check", 0, 16, 0.0))
    bars(StageEvent(1, "parity check", 8, 16, 1.0))
    assert bars.progress is not None
    bars(StageEvent(1, "parity check", 16, 16, 2.0, finished=True))
    assert bars.progress is None, "nothing open: the live display stops, so later output is not drawn over"
    assert "parity check" in out.getvalue()


def test_shown_stages_on_a_pipe_writes_lines():
    out = io.StringIO()
    with shown_stages(Console(file=out, width=200)), stage("convert"):
        import time

        time.sleep(0.6)
    assert out.getvalue().startswith("stage convert: 0.")
