"""Streaming a generative model's reply from `siliconlab serve`: gRPC `stream_infer` or HTTP server-sent events.

The served model is decoupled (serve/generative.py): one request, many responses — `text` pieces, then
`stats` (JSON). Both transports yield ("piece", text) ... ("stats", dict); an error answer raises `ServeError`.
Closing the generator early cancels the request (gRPC: the stream is cancelled; HTTP: the connection is
closed), which stops generation on the server.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

import numpy as np

from siliconlab.errors import ServeError, SiliconlabError


def request_body(message: Any, max_tokens: int | None) -> dict[str, Any]:
    """The inputs by name: `text` for one message, `messages` (JSON) for a conversation."""
    if isinstance(message, (list, tuple)):
        body: dict[str, Any] = {"messages": json.dumps(list(message))}
    elif isinstance(message, (str, bytes)):
        body = {"text": message}
    else:
        raise SiliconlabError(f"message must be a text or a list of {{role, content}}, got {type(message).__name__}")
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def grpc_stream(client: Any, model: str, message: Any, max_tokens: int | None) -> Iterator[tuple[str, Any]]:
    module = client._module
    inputs = []
    for name, value in request_body(message, max_tokens).items():
        if name == "max_tokens":
            array, dtype = np.array([value], dtype=np.int64), "INT64"
        else:
            array, dtype = np.array([value.encode("utf-8") if isinstance(value, str) else value], dtype=object), "BYTES"
        tensor = module.InferInput(name, [1], dtype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client._client.start_stream(callback=lambda result, error: answers.put((result, error)),
                                stream_timeout=client.timeout_s, headers=client.headers)  # fmt: skip
    finished = False
    try:
        try:
            client._client.async_stream_infer(model, inputs)
        except Exception as exc:  # the stream already failed (e.g. refused at once: no key); its callback says why
            finished = True
            try:
                _, error = answers.get(timeout=5)
            except queue.Empty:
                error = None
            status = str(error.status()) if error is not None else None
            raise ServeError(f"{model}: {_message(error) or exc}", status) from None
        while True:
            try:
                result, error = answers.get(timeout=client.timeout_s)
            except queue.Empty:
                raise ServeError(f"{model}: no answer within {client.timeout_s:.0f} s") from None
            if error is not None:
                finished = True  # the server ended the request: cancelling it now would keep Triton waiting
                raise ServeError(f"{model}: {error.message() or error}", str(error.status()))
            names = {output.name for output in result.get_response().outputs}
            if "stats" in names:
                finished = True
                yield "stats", json.loads(_first(result.as_numpy("stats")))
                return
            if "text" in names:
                yield "piece", _first(result.as_numpy("text"))
    finally:
        client._client.stop_stream(cancel_requests=not finished)


def http_stream(client: Any, model: str, message: Any, max_tokens: int | None) -> Iterator[tuple[str, Any]]:
    """POST /v2/models/<model>/generate_stream: each `data:` event is one response as JSON."""
    import urllib.error
    import urllib.request

    body = request_body(message, max_tokens)
    if isinstance(body.get("text"), bytes):
        raise SiliconlabError("over HTTP the message must be a str (JSON carries text); use protocol='grpc' for bytes")
    url = f"http://{client.url}/v2/models/{model}/generate_stream"
    headers = {"Content-Type": "application/json", **(client.headers or {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=client.timeout_s)
    except urllib.error.HTTPError as exc:
        raise ServeError(f"{model}: {_error(exc.read())}", str(exc.code)) from None
    except urllib.error.URLError as exc:
        raise ServeError(f"{model}: cannot reach the server at {client.url} ({exc.reason})") from None
    with response:
        for line in response:
            if not line.startswith(b"data:"):
                continue
            event = json.loads(line[5:])
            if "error" in event:
                raise ServeError(f"{model}: {event['error']}", "400")
            if "stats" in event:
                yield "stats", json.loads(event["stats"])
                return
            if "text" in event:
                yield "piece", event["text"]
    raise ServeError(f"{model}: the server closed the stream before the reply ended")


def _message(error: Any) -> str:
    return (error.message() or str(error)) if error is not None else ""


def _first(array: np.ndarray) -> str:
    value = array.reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _error(raw: bytes) -> str:
    """The message of an error answer: `data: {"error": ...}` or Triton's JSON."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("data:"):
        text = text[5:].strip()
    try:
        return str(json.loads(text).get("error", text))
    except (json.JSONDecodeError, AttributeError):
        return text
