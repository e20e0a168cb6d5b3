"""The streaming chat model behind an API key (issue 24): the gateway forwards gRPC `ModelStreamInfer` and HTTP
`generate_stream` both ways, the model checks the key itself on Triton's private port, the OpenAI front's chat
sends it on, and a client that leaves through the gateway still stops generation. One server for the module, on
the tiny Llama; replies checked against the pipeline called directly (greedy)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from siliconlab.client import Client, ServeError
from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.models import bindings_for
from siliconlab.serve.server import Server

KEY = "keyed-chat-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def served(tiny_chat: Any) -> Any:
    from siliconlab.serve.openai_front import Front

    options = ServeOptions(models=("minilm",), http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                           api_keys=(KEY,)).check()  # fmt: skip
    bindings = bindings_for("tiny", tiny_chat)
    server = Server(options, bindings)
    server.start()
    front = Front(server, bindings, "127.0.0.1", free_port())
    try:
        front.start()
        yield server, front
    finally:
        front.stop()
        took = server.stop()
    assert took < options.drain_timeout_s, f"the drain took {took:.1f} s: a stream was left open"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_stream_through_the_gateway_needs_the_key_and_is_the_pipelines_reply(served: Any, tiny_chat: Any,
                                                                               protocol: str) -> None:  # fmt: skip
    url = served[0].grpc_url if protocol == "grpc" else served[0].http_url
    expected = tiny_chat.reply(QUESTION, max_new_tokens=5)
    with Client(url, protocol=protocol, api_key=KEY) as client:
        pieces = list(client.stream_chat(QUESTION, model="tiny", max_tokens=5))
    assert len(pieces) > 1 and "".join(pieces).strip() == expected["reply"]
    wrong = Client(url, protocol=protocol, api_key="wrong-key-wrong-key-wrong")
    with wrong as client, pytest.raises(ServeError, match="API key"):
        list(client.stream_chat(QUESTION, model="tiny", max_tokens=5))


def test_the_private_port_stream_needs_the_key_too(served: Any) -> None:
    private = f"http://127.0.0.1:{served[0]._triton_ports[0]}/v2/models/tiny/generate_stream"
    refused = httpx.post(private, json={"text": QUESTION, "max_tokens": 3}, timeout=60)
    assert "API key" in refused.text and '"text"' not in refused.text
    keyless = Client(served[0].triton_grpc_url, protocol="grpc")
    with keyless as client, pytest.raises(ServeError, match="API key"):
        list(client.stream_chat(QUESTION, model="tiny", max_tokens=3))


def test_a_client_that_leaves_through_the_gateway_stops_generation(served: Any, tiny_chat: Any) -> None:
    tiny_chat.reply("hi", max_new_tokens=1)
    with Client(served[0].grpc_url, protocol="grpc", api_key=KEY) as client:
        for count, _ in enumerate(client.stream_chat(QUESTION, model="tiny", max_tokens=100), start=1):
            if count == 2:
                break
        deadline = time.monotonic() + 20
        while tiny_chat.last_stats.get("stopped") != "stopped by the caller" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tiny_chat.last_stats.get("stopped") == "stopped by the caller", tiny_chat.last_stats
        assert client.chat("hello", model="tiny", max_tokens=2)["tokens"] == 2


def test_openai_chat_with_the_key(served: Any, tiny_chat: Any) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4}
    url = f"{served[1].url}/v1/chat/completions"
    assert httpx.post(url, json=body, timeout=60).status_code == 401
    reply = httpx.post(url, json=body, headers=AUTH, timeout=60)
    assert reply.status_code == 200, reply.text
    expected = tiny_chat.reply([{"role": "user", "content": QUESTION}], max_new_tokens=4)
    assert reply.json()["choices"][0]["message"]["content"] == expected["reply"]
    streamed = httpx.post(url, json={**body, "stream": True}, headers=AUTH, timeout=60)
    events = [line[5:].strip() for line in streamed.text.splitlines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1] if json.loads(e)["choices"]
    )
    assert text == expected["reply"]


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"[1, 2]", b"{", b'"text"'])
def test_odd_generate_bodies_through_the_gateway_are_a_4xx(served: Any, body: bytes) -> None:
    url = f"{served[0].http_url}/v2/models/tiny/generate_stream"
    reply = httpx.post(url, content=body, headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert 400 <= reply.status_code < 500 and "Traceback" not in reply.text, (reply.status_code, reply.text[:200])
