"""Conversations (system/user/assistant turns) in the generative pipeline, and bad chat input on the CLI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.errors import UsageError
from siliconlab.tasks.messages import check_messages


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([], "non-empty"),
        ("hi", "non-empty list"),
        ([{"role": "robot", "content": "hi"}], "role must be one of"),
        ([{"role": "user"}], "must be a string"),
        ([{"role": "user", "content": "  "}], "empty"),
        ([{"role": "user", "content": b"\xff"}], "UTF-8"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}], "last message"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "only text content parts"),
    ],
)
def test_bad_conversations_are_one_clear_error(messages: Any, error: str) -> None:
    with pytest.raises(UsageError, match=error):
        check_messages(messages)


def test_text_parts_are_read_as_text() -> None:
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]
    assert check_messages([{"role": "user", "content": parts}])[0]["content"] == "Hello\nthere"


def test_a_conversation_goes_through_the_chat_template(tiny_chat: Any) -> None:
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Who are you?"}]  # fmt: skip
    ids, dropped = tiny_chat.prompt(conversation, 4)
    text = tiny_chat.loaded.tokenizer.decode(ids[0])
    assert dropped == 0
    for role in ("system", "user", "assistant"):
        assert role in text
    assert text.index("be brief") < text.index("hello") < text.index("who are you")
    single, _ = tiny_chat.prompt("Who are you?", 4)  # one message is the same as a one-turn conversation
    assert single.tolist() == tiny_chat.prompt([{"role": "user", "content": "Who are you?"}], 4)[0].tolist()


def test_a_long_conversation_loses_its_oldest_turns_first(tiny_chat: Any, caplog: pytest.LogCaptureFixture) -> None:
    old = " ".join(f"old{i}" for i in range(60))
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": old},
                    {"role": "assistant", "content": "ok"}, {"role": "user", "content": "What is new?"}]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="siliconlab"):
        answer = tiny_chat.reply(conversation, max_new_tokens=8)
    assert answer["truncated_tokens"] > 0 and answer["prompt_tokens"] + 8 <= 128 and "dropped" in caplog.text
    text = tiny_chat.loaded.tokenizer.decode(tiny_chat.prompt(conversation, 8)[0][0])
    assert "be brief" in text and "what is new" in text and "old0" not in text


@pytest.fixture(autouse=True)
def _cache(artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILICONLAB_CACHE", str(artifact_cache))


def test_chat_cli_invalid_utf8_is_one_line(tiny_llama: Path, tiny_chat: Any) -> None:
    args = ["chat", "--model", str(tiny_llama), "--unit", "torch-cpu-fp32", "--text", "caf\udcc3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "UTF-8" in result.output and "Traceback" not in result.output


def test_chat_cli_notes_a_message_cut_to_fit_the_context(tiny_llama: Path, tiny_chat: Any) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    args = ["chat", "--model", str(tiny_llama), "--unit", "torch-cpu-fp32", "--text", words, "--max-new-tokens", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "message tokens dropped to fit the context" in result.output
