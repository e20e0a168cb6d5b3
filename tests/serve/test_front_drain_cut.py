"""The OpenAI front's drain timeout (serve/front_guard.py): a request still unanswered when uvicorn's graceful
shutdown runs out is cancelled; its client gets OpenAI's JSON error shape with a 503, not uvicorn's plain-text 500,
and a request that ends within the drain is answered as usual. The front's own uvicorn setup, a scripted app."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from siliconlab.serve.config import free_port
from siliconlab.serve.front_guard import Guard


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers `/v1/quick` after 0.3 s and `/v1/slow` after 60 s (the drain cuts it first)."""
    await asyncio.sleep(0.3 if scope["path"] == "/v1/quick" else 60)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def test_a_request_cut_at_the_drain_timeout_is_a_json_503_and_one_within_it_is_answered() -> None:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(Guard(_app, (), 1024), host="127.0.0.1", port=port, log_level="critical",
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    replies: dict[str, httpx.Response] = {}

    def call(path: str) -> None:
        replies[path] = httpx.post(f"http://127.0.0.1:{port}{path}", json={}, timeout=30)

    calls = [threading.Thread(target=call, args=(path,)) for path in ("/v1/slow", "/v1/quick")]
    for one in calls:
        one.start()
    time.sleep(0.1)  # both accepted
    server.should_exit = True
    for one in calls:
        one.join(30)
    thread.join(10)
    assert replies["/v1/quick"].status_code == 200
    cut = replies["/v1/slow"]
    assert cut.status_code == 503 and cut.headers["content-type"] == "application/json", (cut.status_code, cut.text)
    error = cut.json()["error"]
    assert error["code"] == "server_shutting_down" and "shutting down" in error["message"]
