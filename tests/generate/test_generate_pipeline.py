"""GenerativeChat: reply/stream on the tiny Llama, and every kind of bad input the issue names."""

from __future__ import annotations

import logging

import pytest

from siliconlab.errors import UsageError


def test_reply_has_the_figures_and_matches_the_stream(tiny_chat) -> None:
    answer = tiny_chat.reply("What is the capital of France?", max_new_tokens=6)
    for key in ("reply", "unit", "ms", "ttft_ms", "tokens_per_s", "tokens", "prompt_tokens", "stopped"):
        assert key in answer
    assert answer["unit"] == "torch-cpu-fp32"
    assert 1 <= answer["tokens"] <= 6
    assert 0 < answer["ttft_ms"] <= answer["ms"]
    pieces = list(tiny_chat.stream("What is the capital of France?", max_new_tokens=6))
    assert "".join(pieces).strip() == answer["reply"]  # greedy: the same words both ways


def test_greedy_reply_is_the_models_own_greedy_continuation(tiny_chat) -> None:
    """The pipeline's ids are exactly what a plain argmax loop over the model writes from the chat template."""
    import numpy as np

    ids, _ = tiny_chat.prompt("Who are you?", 5)
    runner = tiny_chat.loaded.runner
    logits, cache = runner.prefill(ids)
    expected = []
    for _ in range(5):
        token = int(logits.argmax(-1)[0])
        expected.append(token)
        logits, cache = runner.decode_step(np.asarray([token]), cache)
    assert runner.generate(ids, 5)[0].tolist() == expected


@pytest.mark.parametrize("bad", ["", "   \n", b"\xff\xfe", "caf\udcc3"])
def test_bad_messages_are_one_clear_error(tiny_chat, bad) -> None:
    with pytest.raises(UsageError, match="empty|UTF-8"):
        tiny_chat.reply(bad)


@pytest.mark.parametrize("bad", [0, -3, 10_000, 2.5, "12", True])
def test_max_new_tokens_out_of_range(tiny_chat, bad) -> None:
    with pytest.raises(UsageError, match="max_new_tokens"):
        tiny_chat.reply("hello", max_new_tokens=bad)


def test_a_message_over_the_context_is_cut_from_the_left_with_a_notice(tiny_chat, caplog) -> None:
    words = [f"word{i}" for i in range(200)]  # the tiny model's context is 128 tokens
    with caplog.at_level(logging.WARNING, logger="siliconlab"):
        answer = tiny_chat.reply(" ".join(words), max_new_tokens=4)
    assert answer["truncated_tokens"] > 0
    assert answer["prompt_tokens"] + 4 <= 128
    assert "first" in caplog.text and "dropped" in caplog.text
    ids, _ = tiny_chat.prompt(" ".join(words), 4)
    text = tiny_chat.loaded.tokenizer.decode(ids[0])
    assert "word199" in text and "word0 " not in text  # the newest words stay, the oldest go


def test_a_reader_that_leaves_stops_generation(tiny_chat) -> None:
    stream = tiny_chat.stream("Tell me a long story", max_new_tokens=60)
    next(stream)
    stream.close()  # a client that disconnects mid-stream
    assert tiny_chat.last_stats["tokens"] < 60
    assert tiny_chat.last_stats["stopped"] == "stopped by the caller"
    assert tiny_chat._lock.acquire(blocking=False)  # the runner is free for the next caller
    tiny_chat._lock.release()


def test_architecture_only_models_cannot_chat(artifact_cache) -> None:
    from siliconlab.tasks.generate import GenerativeChat
    from siliconlab.tasks.pipeline import Loaded

    with pytest.raises(UsageError, match="architecture only"):
        GenerativeChat(Loaded("gpt2", "chat", "torch-cpu-fp32", None, None, 1024, None))


def test_text_pieces_hold_back_an_unfinished_character(tiny_chat) -> None:
    from siliconlab.tasks.generate import TextPieces

    class Bytes:  # a byte-level tokenizer: one UTF-8 byte per token, like GPT-2's byte fallback
        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return bytes(ids).decode("utf-8", errors="replace")

    pieces = TextPieces(Bytes())
    out = [pieces.add(b) for b in "Paris é".encode()]
    assert "\ufffd" not in "".join(out)
    assert "".join(out) == "Paris é" and out[-2] == ""  # the first byte of é waits for the second
