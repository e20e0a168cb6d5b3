"""Output folders are checked before any work: a file or an unwritable place is one line and exit 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app

UNWRITABLE = Path("/proc/siliconlab-cannot-write-here")  # procfs refuses new entries, even to root


@pytest.mark.parametrize(
    "command",
    [
        ["convert", "minilm", "--units", "torch-cpu-fp32", "--out"],
        ["bench", "minilm", "--units", "torch-cpu-fp32", "--quick", "--out"],
        ["eval", "spam", "--units", "torch-cpu-fp32", "--out"],
    ],
    ids=["convert", "bench", "eval"],
)
def test_output_at_a_file_or_unwritable_place_fails_fast_with_one_line(tmp_path: Path, command: list[str]):
    a_file = tmp_path / "results.json"
    a_file.write_text("{}")
    for target, message in ((a_file, "is a file, not a folder"), (UNWRITABLE, "is not a writable folder")):
        begin = time.perf_counter()
        result = CliRunner().invoke(app, [*command, str(target)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
        assert time.perf_counter() - begin < 30, "checked before converting or timing anything"
    assert a_file.read_text() == "{}"
