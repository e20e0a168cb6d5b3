"""`siliconlab.load(..., progress=)`: quiet by default, every stage to a callable, drawn on stderr with True."""

from __future__ import annotations

from pathlib import Path

import pytest

import siliconlab
from siliconlab.progress import StageEvent


def test_a_callable_gets_the_first_runs_stages_and_the_default_prints_nothing(
    tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    events: list[StageEvent] = []
    siliconlab.load(str(tiny_bert), unit="torch-cpu-fp32", cache=tmp_path, progress=events.append)
    labels = {e.label.rpartition(": ")[2] for e in events if e.finished}
    assert {"convert", "parity check", "load"} <= labels
    capsys.readouterr()
    siliconlab.load(str(tiny_bert), unit="torch-cpu-fp32", cache=tmp_path)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", "the API is quiet unless asked, as sentence-transformers is"
