"""The real SmolLM2-135M-Instruct served: the `openai` client against `/v1/chat/completions` on loopback, streamed
and not, with 3 new tokens each (decode on this CPU is ~0.1 s per token); one server for the module."""

from __future__ import annotations

from typing import Any

import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smollm2_served() -> Any:
    import openai

    import siliconlab
    from siliconlab.serve.config import ServeOptions, free_port
    from siliconlab.serve.models import bindings_for
    from siliconlab.serve.openai_front import Front
    from siliconlab.serve.server import Server

    bot = siliconlab.load("smollm2-chat", unit="torch-cpu-fp32")
    options = ServeOptions(models=("smollm2-chat",), http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port()).check()  # fmt: skip
    bindings = bindings_for("smollm2-chat", bot)
    server = Server(options, bindings)
    server.start()
    front = Front(server, bindings, "127.0.0.1", free_port())
    try:
        front.start()
        with openai.OpenAI(base_url=f"{front.url}/v1", api_key="-", max_retries=0, timeout=120) as client:
            yield bot, client
    finally:
        front.stop()
        server.stop()


@pytest.mark.slow
def test_smollm2_through_the_openai_client(smollm2_served: Any) -> None:
    bot, client = smollm2_served
    expected = bot.reply(QUESTION, max_new_tokens=3)
    assert expected["reply"].startswith("The capital")  # real words from the real model
    answer = client.chat.completions.create(model="smollm2-chat", messages=QUESTION, max_tokens=3)
    assert answer.choices[0].message.content == expected["reply"]
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 3 and answer.usage.prompt_tokens == expected["prompt_tokens"]
    chunks = list(client.chat.completions.create(model="smollm2-chat", messages=QUESTION, max_tokens=3, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == expected["reply"]
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3  # one chunk per token


@pytest.mark.slow
def test_smollm2_bad_requests_answer_400(smollm2_served: Any) -> None:
    import openai

    _, client = smollm2_served
    with pytest.raises(openai.BadRequestError, match="max_tokens must be between 1 and 2048"):
        client.chat.completions.create(model="smollm2-chat", messages=QUESTION, max_tokens=5000)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="chat", messages=QUESTION, max_tokens=2)
