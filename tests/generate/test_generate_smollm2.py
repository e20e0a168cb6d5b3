"""The real SmolLM2-135M-Instruct (converted once from its GGUF and cached): it knows the capital of France."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_smollm2_answers_paris() -> None:
    import siliconlab

    bot = siliconlab.load("smollm2-chat", unit="torch-cpu-fp32")
    answer = bot.reply("What is the capital of France?", max_new_tokens=16)
    assert "Paris" in answer["reply"], answer
    assert answer["stopped"] == "end of reply" and answer["ttft_ms"] > 0
