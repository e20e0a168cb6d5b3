"""chat-retrieval: a known prompt gets its reply; unrelated text gets an honest no-answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.errors import UsageError
from siliconlab.tasks.chat import NO_ANSWER, corpus_pairs


def test_corpus_has_prompt_reply_pairs():
    pairs = corpus_pairs()
    assert len(pairs) > 500
    assert all(prompt and reply for prompt, reply, _ in pairs)


@pytest.mark.slow
def test_reply_matches_known_prompts_and_declines_unrelated_text(artifact_cache: Path):
    from siliconlab.tasks import load

    bot = load("chat-retrieval", unit="torch-cpu-fp32", cache=artifact_cache)
    prompt, reply, _ = corpus_pairs()[0]
    answer = bot.reply(prompt)
    assert answer["reply"] == reply and answer["score"] > 0.99 and answer["answered"]
    declined = bot.reply("xq zzv 4471 qqq")
    assert declined["reply"] == NO_ANSWER and not declined["answered"]
    with pytest.raises(UsageError, match="the message is empty"):
        bot.reply("  ")
    with pytest.raises(UsageError, match="not encode"):
        bot.encode(["x"])
