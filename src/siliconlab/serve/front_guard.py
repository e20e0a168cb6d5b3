"""What the OpenAI front checks before a route sees a request: the API key and the body's size.

An ASGI wrapper rather than FastAPI dependencies, so that nothing of a refused request is parsed: a missing key
is a 401 before the body is read, and a body over `max_bytes` is a 413 as soon as its declared length (or, for a
chunked body, the bytes read so far) passes the limit — the rest is never read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from siliconlab.serve.auth import authorized

#: A client that stops sending its body mid-way (slowloris) is answered 408 after this many seconds of silence.
BODY_TIMEOUT_S = 30.0


class Guard:
    """Wraps the front's app: `/v1/*` and the TEI routes (`tei_paths`) need `Authorization: Bearer <key>` when keys
    are set; bodies are bounded. Refusals on a TEI path come in TEI's shape (serve/tei.py), the others in OpenAI's."""

    def __init__(self, app: Any, keys: tuple[str, ...], max_bytes: int, tei_paths: frozenset[str] = frozenset()):
        self.app, self.keys, self.max_bytes, self.tei_paths = app, keys, max_bytes, tei_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        tei = scope["path"] in self.tei_paths
        if (tei or scope["path"].startswith("/v1/")) and not authorized(headers.get("authorization"), self.keys):
            return await _error(send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                "invalid_api_key", [(b"www-authenticate", b"Bearer")], tei=tei)  # fmt: skip
        declared = headers.get("content-length", b"0")
        if not declared.isdigit():
            return await _error(send, 400, "Content-Length is not a number", "invalid_request", tei=tei)
        if int(declared) > self.max_bytes:
            return await _too_large(send, self.max_bytes, tei)
        body, more = bytearray(), True
        while more:
            try:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                return await _error(send, 408, f"no byte of the body came for {BODY_TIMEOUT_S:.0f} s", "timeout",
                                    tei=tei)  # fmt: skip
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await _too_large(send, self.max_bytes, tei)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: the disconnect, when the client leaves

        return await _unless_cut(self.app, scope, replay, send, tei)


async def _unless_cut(app: Any, scope: dict[str, Any], receive: Any, send: Any, tei: bool = False) -> None:
    """Run the request; one still unanswered when the drain timeout cuts it (uvicorn cancels its task) gets a JSON
    503 instead of uvicorn's plain-text 500. A reply already streaming can only be ended."""
    started = False

    async def watched(message: dict[str, Any]) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched)
    except asyncio.CancelledError:
        if started:
            raise
        await _error(send, 503, "the server is shutting down: this request was cut at the drain timeout; send it "
                     "again", "server_shutting_down", kind="server_error", tei=tei)  # fmt: skip


async def _too_large(send: Any, limit: int, tei: bool) -> None:
    await _error(send, 413, f"the request body is over {limit} bytes (the server's --max-request-bytes)",
                 "request_too_large", tei=tei)  # fmt: skip


async def _error(send: Any, status: int, message: str, code: str, extra: list[Any] | None = None,
                 kind: str = "invalid_request_error", tei: bool = False) -> None:  # fmt: skip
    if tei:  # TEI's shape; its error types name no refused key, so "Unauthorized" says it
        error_type = {401: "Unauthorized", 503: "Unhealthy"}.get(status, "Validation")
        body = json.dumps({"error": message, "error_type": error_type}).encode()
    else:
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *(extra or [])]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
