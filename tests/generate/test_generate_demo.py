"""The demo's generative chat mode (terminal, --json, the Gradio chat tab) on the tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.demo.generative import GenerativeMode
from siliconlab.demo.session import DemoSession


@pytest.fixture(scope="module")
def mode(tiny_chat: Any) -> GenerativeMode:
    return GenerativeMode(DemoSession(["torch-cpu-fp32"], threads=1), model="tiny", bot=tiny_chat, max_new_tokens=5)


def test_the_reply_grows_then_carries_its_figures(mode: GenerativeMode, tiny_chat: Any) -> None:
    steps = list(mode.stream("What is the capital of France?"))
    assert len(steps) > 2 and all(not s.done for s in steps[:-1]) and steps[-1].done
    assert all(len(a.text) <= len(b.text) for a, b in zip(steps, steps[1:-1]))
    expected = tiny_chat.reply("What is the capital of France?", max_new_tokens=5)
    assert steps[-1].text == expected["reply"] and steps[-1].unit == "torch-cpu-fp32"
    assert steps[-1].stats["tokens"] == expected["tokens"] and steps[-1].stats["ttft_ms"] > 0


def test_a_reader_that_leaves_frees_the_session(mode: GenerativeMode, tiny_chat: Any) -> None:
    steps = mode.stream("Tell me a story")
    next(steps)
    steps.close()
    assert tiny_chat.last_stats["stopped"] == "stopped by the caller"
    assert mode.session.lock.acquire(timeout=5)  # released: the next answer can run
    mode.session.lock.release()


def test_terminal_streams_and_names_a_bad_text(mode: GenerativeMode) -> None:
    from siliconlab.demo.terminal import run_texts

    console, err = Console(record=True, width=200), Console(record=True, width=200)
    code = run_texts(mode.session, ["chat"], ["hello there", "   "], console, err, as_json=False, generative=mode)
    out = console.export_text()
    assert code == 1 and "Chat (tiny on torch-cpu-fp32):" in out
    assert "time to first token" in out and "tokens/s" in out
    errors = err.export_text()
    assert "text 2" in errors and "empty" in errors


def test_json_record_of_a_generated_reply(mode: GenerativeMode, capsys: pytest.CaptureFixture[str]) -> None:
    from siliconlab.demo.terminal import run_texts

    assert run_texts(mode.session, ["chat"], ["hello"], Console(), Console(), as_json=True, generative=mode) == 0
    document = json.loads(capsys.readouterr().out)
    record = document["rounds"][0]
    assert record["mode"] == "generative" and record["tokens"] >= 1 and record["ttft_ms"] > 0


def test_web_chat_tab_streams_a_generated_reply(mode: GenerativeMode, tmp_path: Path) -> None:
    from siliconlab.demo.web import build_app, respond_generative

    outputs = list(respond_generative(mode, mode.session, "hello"))
    assert outputs[0][5].startswith("writing") and outputs[-1][5].startswith("done")
    assert "time to first token" in outputs[-1][5] and "tokens/s" in outputs[-1][5]
    assert outputs[-1][3][0][0] == "torch-cpu-fp32" and outputs[-1][0].startswith("**Reply** (tiny on")
    bad = list(respond_generative(mode, mode.session, b"\xff"))
    assert len(bad) == 1 and bad[0][0].startswith("⚠️") and "UTF-8" in bad[0][0]
    page = build_app(mode.session, ["chat"], {}, tmp_path, mode, "tiny")
    radios = [c for c in page.config["components"] if c.get("props", {}).get("elem_id") == "chat-mode"]
    assert radios and radios[0]["props"]["value"] == "tiny"


@pytest.mark.parametrize(("args", "message"), [(["--chat-model", "gpt-4"], "--chat-model"),
                                               (["--max-new-tokens", "0"], "--max-new-tokens")])  # fmt: skip
def test_demo_cli_bad_chat_options_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--scenario", "chat", "--text", "hi", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
