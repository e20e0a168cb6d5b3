"""The generative chatbot served: Triton's decoupled (streaming) model over gRPC and HTTP SSE, the OpenAI front's
`/v1/chat/completions` through the `openai` client, `siliconlab.client.stream_chat`, bad input and clients that
leave mid-stream. One server for the module, on the tiny Llama (tokens in milliseconds); answers are checked
against the pipeline called directly (greedy: the same tokens both ways)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np
import pytest

from siliconlab.client import Client, ServeError
from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.models import bindings_for
from siliconlab.serve.server import Server

QUESTION = "What is the capital of France?"
#: Long enough that a client leaving after two pieces is well before the end (the tiny model's context is 128).
LONG = 100


@pytest.fixture(scope="module")
def served(tiny_chat: Any) -> Any:
    from siliconlab.serve.openai_front import Front

    options = ServeOptions(models=("minilm",), http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port()).check()  # fmt: skip
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
    # Every stream ended cleanly (finished, cancelled mid-way, or refused): Triton unloads the model without
    # hitting its exit timeout (a stream cancelled after its final response used to hold the model for 10 s).
    assert took < options.drain_timeout_s, f"the drain took {took:.1f} s: a stream was left open"


def client_for(server: Server, protocol: str) -> Client:
    return Client(server.grpc_url if protocol == "grpc" else server.http_url, protocol=protocol)


def wait_stopped_by_caller(bot: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    """The pipeline's figures once a stream ended because its reader left (the decoder released)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if bot.last_stats.get("stopped") == "stopped by the caller":
            return dict(bot.last_stats)
        time.sleep(0.05)
    raise AssertionError(f"generation did not stop: {bot.last_stats}")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_stream_is_the_pipelines_reply_piece_by_piece(served: Any, tiny_chat: Any, protocol: str) -> None:
    expected = tiny_chat.reply(QUESTION, max_new_tokens=6)
    with client_for(served[0], protocol) as client:
        pieces = list(client.stream_chat(QUESTION, model="tiny", max_tokens=6))
        stats = client.last_stats
    assert len(pieces) > 1  # streamed, not one answer at the end
    assert "".join(pieces).strip() == expected["reply"]
    assert stats["tokens"] == expected["tokens"] and stats["stopped"] == expected["stopped"]
    assert stats["prompt_tokens"] == expected["prompt_tokens"] and stats["ttft_ms"] > 0


def test_concurrent_streams_each_get_their_own_reply_and_figures(served: Any, tiny_chat: Any) -> None:
    """Two clients at once: replies are written one after the other, each with its own figures."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [("Hello there", 3), ("What is the capital of France?", 5)]
    expected = [tiny_chat.reply(q, max_new_tokens=n) for q, n in questions]

    def ask(question: tuple[str, int]) -> dict[str, Any]:
        with client_for(served[0], "grpc") as client:
            return client.chat(question[0], model="tiny", max_tokens=question[1])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, questions))
    for answer, want in zip(answers, expected):
        assert answer["reply"] == want["reply"] and answer["tokens"] == want["tokens"]
        assert answer["prompt_tokens"] == want["prompt_tokens"]


def test_curl_generate_stream_is_server_sent_events(served: Any) -> None:
    body = {"text": QUESTION, "max_tokens": 3}
    reply = httpx.post(f"{served[0].http_url}/v2/models/tiny/generate_stream", json=body, timeout=60)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in reply.text.splitlines() if line.startswith("data:")]
    assert [("text" in e, "stats" in e) for e in events] == [(True, False)] * 3 + [(False, True)]
    assert json.loads(events[-1]["stats"])["tokens"] == 3


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize(
    ("message", "max_tokens", "error"),
    [
        ("", None, "empty"),
        ("   \n", 4, "empty"),
        (b"caf\xc3", 4, "not valid UTF-8"),
        ("hello", 0, "between 1 and 127"),
        ("hello", 100_000, "between 1 and 127"),
        ("hello", 2**40, "between 1 and 127, got 1099511627776"),  # as sent: no int32 wrap to 0
        ([{"role": "robot", "content": "hi"}], 4, "role must be one of"),
        ([], 4, "non-empty"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}], 4, "last message"),
    ],
)
def test_bad_requests_are_a_clear_error_and_the_server_stays_up(served: Any, protocol: str, message: Any,
                                                                max_tokens: Any, error: str) -> None:  # fmt: skip
    if protocol == "http" and isinstance(message, bytes):  # JSON carries text: send the raw bytes instead
        raw = b'{"text": "caf\xc3", "max_tokens": 4}'
        reply = httpx.post(f"{served[0].http_url}/v2/models/tiny/generate_stream", content=raw, timeout=60)
        assert reply.status_code == 400, reply.text
        return
    with client_for(served[0], protocol) as client:
        with pytest.raises(ServeError, match=error):
            list(client.stream_chat(message, model="tiny", max_tokens=max_tokens))
        assert len(list(client.stream_chat("hello", model="tiny", max_tokens=2))) >= 1


def test_text_and_messages_together_are_refused(served: Any) -> None:
    body = {"text": "hi", "messages": json.dumps([{"role": "user", "content": "hi"}])}
    reply = httpx.post(f"{served[0].http_url}/v2/models/tiny/generate_stream", json=body, timeout=60)
    assert reply.status_code == 400 and "exactly one" in reply.text


def test_a_prompt_over_the_context_is_cut_from_the_left_with_a_notice(served: Any) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    with client_for(served[0], "grpc") as client:
        answer = client.chat(words, model="tiny", max_tokens=4)
    assert answer["truncated_tokens"] > 0 and answer["prompt_tokens"] + 4 <= 128


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_client_that_leaves_stops_generation(served: Any, tiny_chat: Any, protocol: str) -> None:
    tiny_chat.reply("hi", max_new_tokens=1)  # last_stats: a finished reply
    with client_for(served[0], protocol) as client:
        for count, _ in enumerate(client.stream_chat(QUESTION, model="tiny", max_tokens=LONG), start=1):
            if count == 2:
                break  # closes the stream: the server must stop generating
        stats = wait_stopped_by_caller(tiny_chat)
        assert stats["tokens"] < LONG
        assert client.chat("hello", model="tiny", max_tokens=2)["tokens"] == 2  # the decoder was released


# -- the OpenAI-compatible front ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_client(served: Any) -> Any:
    import openai

    with openai.OpenAI(base_url=f"{served[1].url}/v1", api_key="not-needed", max_retries=0, timeout=60) as client:
        yield client


CONVERSATION = [
    {"role": "system", "content": "You answer in one word."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi"},
    {"role": "user", "content": QUESTION},
]


def test_openai_chat_completion(openai_client: Any, tiny_chat: Any) -> None:
    expected = tiny_chat.reply(CONVERSATION, max_new_tokens=4)
    answer = openai_client.chat.completions.create(model="tiny", messages=CONVERSATION, max_tokens=4)
    assert answer.object == "chat.completion" and answer.model == "tiny"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == expected["reply"]
    assert answer.choices[0].finish_reason == ("length" if expected["stopped"] == "length" else "stop")
    assert answer.usage.prompt_tokens == expected["prompt_tokens"]
    assert answer.usage.completion_tokens == expected["tokens"]
    assert answer.usage.total_tokens == expected["prompt_tokens"] + expected["tokens"]


def test_openai_streamed_chat_completion(openai_client: Any, tiny_chat: Any) -> None:
    expected = tiny_chat.reply(CONVERSATION, max_new_tokens=4)
    stream = openai_client.chat.completions.create(model="tiny", messages=CONVERSATION, max_tokens=4, stream=True,
                                                   stream_options={"include_usage": True})  # fmt: skip
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert len([c for c in with_choices if c.choices[0].delta.content]) > 1  # piece by piece
    assert text.strip() == expected["reply"]
    assert with_choices[-1].choices[0].finish_reason in ("length", "stop")
    assert chunks[-1].usage.completion_tokens == expected["tokens"]


def test_openai_lists_the_chat_model(openai_client: Any) -> None:
    assert "tiny" in [m.id for m in openai_client.models.list()]


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "  "}]}, 400, "messages"),
        ({"max_tokens": 0}, 400, "max_tokens"),
        ({"max_tokens": 100_000}, 400, "max_tokens"),
        ({"model": "gpt-4o"}, 404, "model"),
        ({"n": 2}, 400, "n"),
        ({"stream": True, "max_tokens": -1}, 400, "max_tokens"),
        ({"n": True}, 400, "n"),  # a re-test: JSON booleans and 1.0 were taken as counts
        ({"max_tokens": True}, 400, "max_tokens"),
        ({"n": 1.0}, 400, "n"),
    ],
)
def test_openai_bad_requests_are_4xx_with_openai_errors(openai_client: Any, served: Any, change: dict[str, Any],
                                                        status: int, param: str) -> None:  # fmt: skip
    import openai

    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **change}
    reply = httpx.post(f"{served[1].url}/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]
    kind = openai.NotFoundError if status == 404 else openai.BadRequestError
    with pytest.raises(kind):
        openai_client.chat.completions.create(**body)


def test_openai_invalid_utf8_and_malformed_json_are_400(served: Any) -> None:
    url = f"{served[1].url}/v1/chat/completions"
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "caf\xc3"}]}'
    for body in (raw, b'{"model": "tiny", "messages": ['):
        reply = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=60)
        assert reply.status_code == 400 and reply.json()["error"]["message"], reply.text


def test_openai_client_that_leaves_stops_generation(served: Any, tiny_chat: Any) -> None:
    tiny_chat.reply("hi", max_new_tokens=1)
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": LONG, "stream": True}
    with httpx.stream("POST", f"{served[1].url}/v1/chat/completions", json=body, timeout=60) as reply:
        assert reply.status_code == 200
        events = 0
        for line in reply.iter_lines():
            events += line.startswith("data:")
            if events == 3:
                break
    stats = wait_stopped_by_caller(tiny_chat)
    assert stats["tokens"] < LONG
    with httpx.Client(timeout=60) as http:  # the decoder was released: the next request is answered
        body.update(stream=False, max_tokens=2)
        assert http.post(f"{served[1].url}/v1/chat/completions", json=body).json()["usage"]["completion_tokens"] == 2


def test_openai_client_that_leaves_before_its_answer_stops_generation(served: Any, tiny_chat: Any) -> None:
    """A non-streamed completion whose client gives up: the front notices the disconnect and cancels."""
    tiny_chat.reply("hi", max_new_tokens=1)
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": LONG}
    cancel_dir = served[0].bindings[0].infer.cancel_dir
    with tiny_chat._lock:  # generation cannot start until the client has left (deterministic on any machine)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{served[1].url}/v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.5))
        deadline = time.monotonic() + 20
        while not any(cancel_dir.iterdir()):  # the front stopped the request by its key
            assert time.monotonic() < deadline, "the request was not cancelled"
            time.sleep(0.05)
    stats = wait_stopped_by_caller(tiny_chat)
    assert stats["tokens"] < LONG


def test_the_stream_binding_declares_a_decoupled_unbatched_model(served: Any) -> None:
    config = httpx.get(f"{served[0].http_url}/v2/models/tiny/config", timeout=30).json()
    assert config["model_transaction_policy"]["decoupled"] is True
    assert config["max_batch_size"] == 0
    assert {i["name"] for i in config["input"]} == {"text", "messages", "max_tokens"}
    assert np.all([i.get("optional", False) for i in config["input"]])
