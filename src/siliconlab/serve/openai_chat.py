"""`POST /v1/chat/completions` on the OpenAI-compatible front: forwarded to Triton's streaming chat model.

The front holds no model: a chat completion is one gRPC `stream_infer` call to the decoupled model of
serve/generative.py (the conversation as JSON, `max_tokens`), whose responses are the reply's pieces and then
its figures. `stream: true` answers with OpenAI's server-sent events (`chat.completion.chunk` objects, then
`data: [DONE]`); otherwise the pieces are joined into one `chat.completion`. A client that disconnects
stops generation on the server by the request's key, and the front reads the stream to its end rather than
cancelling it (see serve/generative.py for why). Requests are
checked here first (messages, roles, max_tokens range, model), so a bad one is a 400 before any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations from these globals
from pydantic import BaseModel, StrictInt

from siliconlab.errors import UsageError
from siliconlab.serve.generative import STREAM_KEY, caller_key, stop_by_key
from siliconlab.serve.openai_backend import ApiError, Backend

#: Why generation stopped (the pipeline's words) -> OpenAI's finish_reason.
FINISH = {"end of reply": "stop", "length": "length"}


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[Any]
    # Strict: JSON `true` or `1.0` is not a count (pydantic's lax mode took them as 1; a re-test sent them).
    max_tokens: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: StrictInt = 1
    #: accepted for compatibility; generation here is greedy (reproducible, what parity checks)
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None


def check_request(backend: Backend, request: ChatRequest) -> tuple[list[dict[str, str]], int | None]:
    """(checked messages, max_tokens) or an ApiError naming the parameter at fault."""
    from siliconlab.tasks.messages import check_messages

    most = backend.options.max_chat_messages
    if len(request.messages) > most:
        raise ApiError(400, f"'messages' holds {len(request.messages)} messages; at most {most} per request "
                            "(--max-chat-messages)", param="messages")  # fmt: skip
    if request.model not in backend.chat_models:
        known = ", ".join(backend.chat_models) or "none"
        raise ApiError(404, f"model '{request.model}' is not served here (chat models: {known})",
                       param="model", code="model_not_found")  # fmt: skip
    if request.n != 1:
        raise ApiError(400, f"n must be 1 (greedy generation writes one reply), got {request.n}", param="n")
    try:
        messages = check_messages(request.messages)
    except UsageError as exc:
        raise ApiError(400, str(exc), param="messages") from None
    max_tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    limit = backend.chat_models[request.model]
    if max_tokens is not None and not 1 <= max_tokens <= limit:
        name = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        raise ApiError(400, f"{name} must be between 1 and {limit}, got {max_tokens}", param=name)
    return messages, max_tokens


async def stream_pieces(backend: Backend, model: str, messages: list[dict[str, str]],
                        max_tokens: int | None) -> AsyncGenerator[tuple[str, Any], None]:  # fmt: skip
    """("piece", text) ... then ("stats", dict), from Triton's streaming model; an error raises ApiError.
    Closing this iterator early stops the request (the server stops generating)."""
    from tritonclient.grpc import aio as grpcclient

    from siliconlab.serve.generative import FAILED

    tensor = grpcclient.InferInput("messages", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([json.dumps(messages).encode()], dtype=object))
    inputs = [tensor]
    if max_tokens is not None:
        limit = grpcclient.InferInput("max_tokens", [1], "INT64")
        limit.set_data_from_numpy(np.array([max_tokens], dtype=np.int64))
        inputs.append(limit)

    cancel_dir = backend.cancel_dirs.get(model)
    key = caller_key()

    async def one_request() -> AsyncIterator[dict[str, Any]]:
        yield {"model_name": model, "inputs": inputs, "parameters": {STREAM_KEY: key}}

    # The gRPC stream is read by a task of its own: a read cancelled with the HTTP request (its client left)
    # would cancel the gRPC call, and Triton never finishes a call cancelled just after its final response.
    extra = {"headers": backend.headers} if backend.headers else {}  # the server's key, for the model's check
    responses = backend.client.stream_infer(one_request(), **extra)
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    reader = _background(_read_all(responses, arrived))
    ended = False
    try:
        while True:
            item = await arrived.get()
            if item is _END:
                ended = True
                raise ApiError(502, "the server closed the stream before the reply ended", "server_error")
            if isinstance(item, Exception):
                ended = True
                raise ApiError(502, f"the stream failed: {item}", "server_error")
            result, error = item
            if error is not None:
                ended = True
                message = error.message() or str(error)
                raise ApiError(500, message, "server_error") if FAILED in message else ApiError(400, message)
            names = {output.name for output in result.get_response().outputs}
            if "stats" in names:
                ended = True
                yield "stats", json.loads(bytes(result.as_numpy("stats").reshape(-1)[0]).decode())
                return
            if "text" in names:
                yield "piece", bytes(result.as_numpy("text").reshape(-1)[0]).decode("utf-8")
    finally:
        if not ended and cancel_dir is not None:
            stop_by_key(cancel_dir, key)  # a client that left: the server stops generating at its next piece
        _background(_settle(reader, responses, cancel=not ended and cancel_dir is None, cancel_dir=cancel_dir,
                            key=key))  # fmt: skip


_END = object()
#: Tasks that outlive the request that started them (asyncio keeps only weak references to tasks).
_BACKGROUND: set[asyncio.Task[Any]] = set()


def _background(work: Any) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def _read_all(responses: Any, arrived: asyncio.Queue[Any]) -> None:
    try:
        async for item in responses:
            arrived.put_nowait(item)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - handed to the request, which answers with it
        arrived.put_nowait(exc)
    finally:
        arrived.put_nowait(_END)


async def _settle(reader: asyncio.Task[Any], responses: Any, cancel: bool, cancel_dir: Path | None, key: str,
                  timeout_s: float = 10.0) -> None:  # fmt: skip
    """Let the stream end on its own: a finished reply, or one stopped by key, ends once the server has sent its
    final response. Only a stream that will not end (or one that cannot be stopped by key) is cancelled."""
    try:
        if cancel:
            responses.cancel()
        await asyncio.wait_for(asyncio.shield(reader), timeout_s)
    except Exception:  # noqa: BLE001 - a stream that will not end (TimeoutError) or failed is cancelled after all
        responses.cancel()
    finally:
        if cancel_dir is not None:
            (cancel_dir / key).unlink(missing_ok=True)


def usage(stats: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(stats.get("prompt_tokens", 0)), int(stats.get("tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def siliconlab_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """What OpenAI's shape has no field for: TTFT, tokens/s, unit, truncation (an extra key clients ignore)."""
    keys = ("unit", "ttft_ms", "tokens_per_s", "ms", "truncated_tokens", "stopped")
    return {key: stats.get(key) for key in keys}


async def complete(backend: Backend, request: ChatRequest) -> dict[str, Any]:
    """One `chat.completion`: the whole reply."""
    messages, max_tokens = check_request(backend, request)
    pieces, stats = [], {}
    async for kind, value in stream_pieces(backend, request.model, messages, max_tokens):
        if kind == "piece":
            pieces.append(value)
        else:
            stats = value
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces).strip()},
                "finish_reason": FINISH.get(str(stats.get("stopped")), "stop"),
                "logprobs": None,
            }
        ],  # fmt: skip
        "usage": usage(stats),
        "siliconlab": siliconlab_stats(stats),
    }


async def chunks(backend: Backend, request: ChatRequest) -> AsyncIterator[str]:
    """OpenAI's server-sent events for a streamed completion. The first response is awaited before the HTTP
    answer starts (by the caller), so a request the server refuses is still a 4xx, not a broken stream."""
    messages, max_tokens = check_request(backend, request)
    stream = stream_pieces(backend, request.model, messages, max_tokens)
    first = await stream.__anext__()
    return _events(request, stream, first)


async def _events(request: ChatRequest, stream: AsyncGenerator[tuple[str, Any], None],
                  first: tuple[str, Any]) -> AsyncIterator[str]:  # fmt: skip
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": request.model}  # fmt: skip

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    try:
        yield event({"role": "assistant", "content": ""})
        item, started = first, False
        while True:
            kind, value = item
            if kind == "stats":
                yield event({}, FINISH.get(value.get("stopped"), "stop"), siliconlab=siliconlab_stats(value))
                if request.stream_options is not None and request.stream_options.include_usage:
                    yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage(value)})}\n\n"
                break
            text = value.lstrip() if not started else value  # the reply's leading space, as the joined reply
            if text:
                started = True
                yield event({"content": text})
            item = await stream.__anext__()
        yield "data: [DONE]\n\n"
    except ApiError as exc:  # the HTTP status is sent already: the error travels as an event
        yield f"data: {json.dumps(exc.body())}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        await stream.aclose()  # a client that left: cancels the gRPC stream


async def unless_disconnected(http: Request, work: Any, poll_s: float = 0.2) -> Any:
    """Await `work`; if the HTTP client disconnects first, cancel it (which cancels the gRPC stream, so the server
    stops generating) — Starlette does not cancel a plain endpoint when its client leaves."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=poll_s)
        if done:
            return task.result()
        if await http.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise ApiError(499, "the client closed the connection", "server_error")


def chat_router(backend: Backend) -> Any:
    from fastapi import APIRouter
    from fastapi.responses import StreamingResponse

    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: ChatRequest, http: Request) -> Any:
        if request.stream:
            events = await unless_disconnected(http, chunks(backend, request))
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
        return await unless_disconnected(http, complete(backend, request))

    return router
