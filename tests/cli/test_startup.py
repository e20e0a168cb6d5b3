"""Start-up: importing the package, the unit registry or the CLI loads no heavy library, and help renders well.

Heavy libraries (torch, transformers, engines) take seconds to import; `--help`, `units` and usage errors must
not pay for them. Each check runs in a fresh interpreter: this test process has long imported them all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from siliconlab.cli import app

HEAVY = ("torch", "transformers", "onnxruntime", "onnx", "openvino", "coremltools", "mlx", "triton", "pandas")
COMMANDS = ("units", "models", "convert", "bench", "compare")


def _modules_after(code: str) -> set[str]:
    """Top-level packages loaded by running `code` in a fresh interpreter (same sys.path as this one)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["siliconlab", "siliconlab.units", "siliconlab.cli", "siliconlab.models"])
def test_import_loads_no_heavy_library(module: str):
    assert _modules_after(f"import {module}") & set(HEAVY) == set()


def test_registry_listing_needs_no_torch_without_a_gpu_driver():
    """`siliconlab units` asks every unit whether it can run; on a machine with no GPU driver that takes no torch."""
    from siliconlab.units.cuda import _certainly_no_gpu

    if not _certainly_no_gpu():
        pytest.skip("a GPU driver is present: the CUDA units' availability rightly asks torch")
    code = "from siliconlab.units import REGISTRY\nrows = [unit().describe() for unit in REGISTRY.values()]"
    assert "torch" not in _modules_after(code)


def test_help_runs_as_a_command():
    proc = subprocess.run(
        [sys.executable, "-m", "siliconlab", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "COLUMNS": "100"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout and all(command in proc.stdout for command in COMMANDS)


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "100"}, terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)])
def test_help_fits_100_columns_and_shows_no_bool_metavar(command: tuple[str, ...]):
    text = _help(*command)
    assert "<bool>" not in text
    assert max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.parametrize("command", COMMANDS)
def test_help_paragraphs_have_no_hard_line_breaks(command: str):
    """Rich wraps each paragraph to the terminal; a newline kept from the docstring would cut a sentence."""
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    assert not re.search(r"[^\n]\n[^\n]", click_command.help or "")


@pytest.mark.parametrize("command", ["convert", "bench"])
def test_help_description_lines_break_only_where_the_next_word_does_not_fit(command: str):
    description = _help(command).split("╭")[0].splitlines()
    for line, following in zip(description, description[1:]):
        if line.strip() and following.strip():
            assert len(line.rstrip()) + 1 + len(following.split()[0]) > 96, (line, following)


@pytest.mark.parametrize("command", ["units", "models", "convert", "compare"])
def test_every_option_shows_its_default(command: str):
    """Options that take a value, and on/off pairs, state their default; a plain flag is off unless given."""
    for param in get_command(app).commands[command].params:  # type: ignore[attr-defined]
        plain_flag = getattr(param, "is_flag", False) and not param.secondary_opts
        if param.param_type_name == "option" and not plain_flag:
            assert param.default is not None or isinstance(param.show_default, str), param.name


@pytest.mark.parametrize("args", [["units"], ["units", "--json"]])
def test_a_reader_that_leaves_early_gets_no_error_line(args: list[str]):
    """`siliconlab units | head -1`: the pipe closes under us; we stop quietly (exit 141, as on SIGPIPE)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "siliconlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first write
    _, stderr = proc.communicate(timeout=120)
    assert stderr.decode() == "" and proc.returncode == 141


def test_a_warning_is_one_unwrapped_line_when_stderr_is_not_a_terminal():
    message = "unit x could not serve y (" + "a long reason, " * 12 + "); trying the next one"
    code = (
        "from siliconlab.cli.common import _quiet_libraries\n_quiet_libraries()\n"
        f"from siliconlab.log import log\nlog.warning({message!r})"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("COLUMNS", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.stderr.splitlines() == [f"WARNING  {message}"]
