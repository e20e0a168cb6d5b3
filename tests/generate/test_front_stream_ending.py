"""How the OpenAI front ends a gRPC stream to the chat model (serve/openai_chat.py `stream_pieces`).

The tritonserver PyTriton 0.7 ships never finishes a gRPC stream that is cancelled just after its final
response, and the model then holds the drain for its whole timeout. So the front must never cancel a stream
that has ended or that it stopped by key; it reads it to the end instead. These tests drive `stream_pieces`
with a scripted stream (no server), so every ordering is deterministic: the server-side half is covered by
test_generate_serve.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.serve.openai_backend import Backend
from siliconlab.serve.openai_chat import stream_pieces


class Output:
    def __init__(self, name: str):
        self.name = name


class Result:
    """One decoupled response, as tritonclient's InferResult shows it."""

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value

    def get_response(self) -> Any:
        return type("Response", (), {"outputs": [Output(self.name)]})()

    def as_numpy(self, name: str) -> np.ndarray:
        assert name == self.name
        return np.array([self.value.encode()], dtype=object)


class ScriptedStream:
    """A gRPC response stream: `pieces` text responses, stats, then the server closes the stream. Responses
    after the first `release_after` wait until `release` is set (a server still generating)."""

    def __init__(self, pieces: int, release_after: int | None = None):
        stats = json.dumps({"tokens": pieces, "stopped": "length"})
        self.items = [Result("text", f" w{i}") for i in range(pieces)] + [Result("stats", stats)]
        self.release_after = release_after
        self.release = asyncio.Event()
        self.cancelled = False
        self.closed = asyncio.Event()
        self.sent_parameters: dict[str, Any] = {}

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> tuple[Any, Any]:
        if self.cancelled:
            raise asyncio.CancelledError
        try:  # like grpc.aio: a read cancelled by its task cancels the call
            if self.release_after is not None and self._sent >= self.release_after:
                await self.release.wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancel()
            raise
        if not self.items:
            self.closed.set()
            raise StopAsyncIteration
        self._sent += 1
        return self.items.pop(0), None

    _sent = 0

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class ScriptedClient:
    def __init__(self, stream: ScriptedStream):
        self.stream = stream

    def stream_infer(self, requests: Any) -> ScriptedStream:
        async def first() -> None:
            async for request in requests:
                self.stream.sent_parameters = request.get("parameters") or {}

        asyncio.ensure_future(first())
        return self.stream


def backend_for(stream: ScriptedStream, cancel_dir: Path | None) -> Backend:
    backend = Backend("unused:0", 8, {}, {"tiny": 100}, {"tiny": cancel_dir} if cancel_dir else {})
    backend.client = ScriptedClient(stream)
    return backend


MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_finished_reply_is_read_to_the_end_not_cancelled(tmp_path: Path) -> None:
    async def scenario() -> ScriptedStream:
        stream = ScriptedStream(pieces=3)
        got = [item async for item in stream_pieces(backend_for(stream, tmp_path), "tiny", MESSAGES, 3)]
        assert [kind for kind, _ in got] == ["piece"] * 3 + ["stats"]
        await asyncio.wait_for(stream.closed.wait(), 5)
        return stream

    stream = asyncio.run(scenario())
    assert not stream.cancelled and not list(tmp_path.iterdir())


def test_a_reader_cancelled_right_after_the_final_response_does_not_cancel_the_stream(tmp_path: Path) -> None:
    """The race that held the drain: the reply has ended, the front is closing the stream, and the HTTP client
    leaves (its task is cancelled) before the server has closed the stream."""

    async def scenario() -> ScriptedStream:
        stream = ScriptedStream(pieces=2, release_after=3)  # the server closes the stream only when released
        pieces = stream_pieces(backend_for(stream, tmp_path), "tiny", MESSAGES, 2)

        async def consume() -> None:  # as the SSE writer does: read to the stats, then close
            try:
                async for kind, _ in pieces:
                    if kind == "stats":
                        break
            finally:
                await pieces.aclose()

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stream.release.set()
        await asyncio.wait_for(stream.closed.wait(), 5)
        return stream

    stream = asyncio.run(scenario())
    assert not stream.cancelled


def test_a_client_that_leaves_mid_reply_stops_it_by_key_and_the_stream_ends_on_its_own(tmp_path: Path) -> None:
    async def scenario() -> tuple[ScriptedStream, list[str]]:
        stream = ScriptedStream(pieces=50, release_after=2)
        pieces = stream_pieces(backend_for(stream, tmp_path), "tiny", MESSAGES, 50)
        async for kind, _ in pieces:
            if kind == "piece":
                break
        await pieces.aclose()  # the HTTP client left after one piece
        await asyncio.sleep(0.05)
        markers = [p.name for p in tmp_path.iterdir()]  # what the server's callable looks for before each piece
        stream.release.set()  # the server stops and closes the stream
        await asyncio.wait_for(stream.closed.wait(), 5)
        await asyncio.sleep(0.05)
        return stream, markers

    stream, markers = asyncio.run(scenario())
    key = stream.sent_parameters["siliconlab_stream_key"]
    assert markers == [key] and key.startswith("caller-")
    assert not stream.cancelled
    assert not list(tmp_path.iterdir())  # the marker is removed once the stream ended


def test_without_a_way_to_stop_by_key_a_client_that_leaves_cancels_the_stream() -> None:
    async def scenario() -> ScriptedStream:
        stream = ScriptedStream(pieces=50, release_after=2)
        pieces = stream_pieces(backend_for(stream, None), "tiny", MESSAGES, 50)
        async for _ in pieces:
            break
        await pieces.aclose()
        await asyncio.sleep(0.05)
        return stream

    assert asyncio.run(scenario()).cancelled
