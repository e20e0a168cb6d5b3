"""The authenticating gateway in front of Triton's KServe ports (HTTP and gRPC), for a server with API keys.

Triton 2.51 can check a header only against a value given on its command line, which every local user reads.
So when the server has keys, Triton binds 127.0.0.1 on private ports and this gateway takes the public ones:
it answers liveness/readiness without a key, refuses every other request without `Authorization: Bearer <key>`
(HTTP 401 / gRPC UNAUTHENTICATED), refuses Triton's admin APIs itself (403 / PERMISSION_DENIED; Triton has
them off anyway, see server.py), and forwards the rest unchanged, streams included.

It is also where the drain happens: `drain()` turns readiness to not-ready and refuses new requests (HTTP 503,
gRPC UNAVAILABLE) while every request already accepted runs to its end; only then does Triton stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from siliconlab.errors import SiliconlabError
from siliconlab.serve.auth import OPEN_GRPC, OPEN_PATHS, authorized

GRPC_SERVICE = "/inference.GRPCInferenceService/"
#: Triton's admin APIs, refused before they reach Triton.
ADMIN_HTTP = ("/v2/repository", "/v2/systemsharedmemory", "/v2/cudasharedmemory", "/v2/trace", "/v2/logging")
ADMIN_GRPC = ("Repository", "SharedMemory", "TraceSetting", "LogSettings")
#: The largest body of a generate request the gateway reads whole (to add the key to its parameters).
GENERATE_BYTES = 4 * 1024 * 1024
#: The largest KServe request the gateway forwards (Triton 2.51 has no bound of its own): 32 texts of 1 MB fit twice.
MAX_BODY_BYTES = 64 * 1024 * 1024


#: How Triton's HTTP frontend (2.51) begins the message of a 500 that is a body it could not parse.
UNPARSED = ("failed to parse the request JSON buffer", "Unable to parse ")


class TooLarge(Exception):
    """A body over MAX_BODY_BYTES: 413."""


#: Hop-by-hop headers (RFC 9110 7.6.1) do not travel on; `Authorization` does: Triton's models check it again.
DROPPED = {"host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
           "proxy-authorization"}  # fmt: skip


class Drain:
    """Counts the requests in flight; once draining, new ones are refused and `wait()` waits for the rest."""

    def __init__(self) -> None:
        self.draining = False
        self._inflight = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()

    def start(self) -> None:
        self.draining = True

    def wait(self, timeout_s: float) -> int:
        """Wait until nothing is in flight or the timeout passes; the requests still running then."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._inflight and time.monotonic() < deadline:
                self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            return self._inflight


# -- HTTP ------------------------------------------------------------------------------------------------------


class HttpGateway:
    """An ASGI app forwarding to Triton's private HTTP port."""

    def __init__(self, upstream: str, keys: tuple[str, ...], drain: Drain, timeout_s: float = 600.0):
        self.upstream, self.keys, self.drain, self.timeout_s = upstream, keys, drain, timeout_s
        self.client: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return None
        path = posixpath.normpath(re.sub("/+", "/", scope["path"])).lower()  # //v2/./REPOSITORY/index too
        headers = [(k.decode("latin-1").lower(), v) for k, v in scope["headers"]]
        given = next((v for k, v in headers if k == "authorization"), None)
        if path == "/v2/health/ready" and self.drain.draining:
            return await _answer(send, 503, "the server is draining: not ready")
        if path not in OPEN_PATHS and not authorized(given, self.keys):
            return await _answer(send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                 [(b"www-authenticate", b"Bearer")])  # fmt: skip
        if path.startswith(ADMIN_HTTP):
            return await _answer(send, 403, "this API is off on this server")
        if self.drain.draining:
            return await _answer(send, 503, "the server is draining: send this request again elsewhere")
        declared = next((v for k, v in headers if k == "content-length"), b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            return await _answer(send, 413, f"the request body is over {MAX_BODY_BYTES} bytes")
        kept = [(k, v) for k, v in headers if k not in DROPPED]
        if not any(k == "accept-encoding" for k, _ in kept):  # else httpx asks for gzip the client never asked for
            kept.append(("accept-encoding", b"identity"))
        if self.keys and given is not None and path.endswith(("/generate", "/generate_stream")):
            return await self._generate(scope, receive, send, kept, given)
        with self.drain.track():
            await self._forward(scope, receive, send, kept)

    async def _generate(self, scope: dict[str, Any], receive: Any, send: Any, headers: list[Any], key: bytes) -> None:
        """Triton's generate routes do not forward headers to the model, so the key goes into the body's
        `parameters` (which they do pass on) for the model's own check (models.key_given)."""
        from siliconlab.serve.front_guard import BODY_TIMEOUT_S

        body = bytearray()
        while True:
            try:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                return await _answer(send, 408, "the body stopped coming")
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > GENERATE_BYTES:
                return await _answer(send, 413, f"a generate request is at most {GENERATE_BYTES} bytes")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError) as exc:
            return await _answer(send, 400, f"the body is not a JSON object ({type(exc).__name__})")
        given = request.get("parameters")
        parameters: dict[str, Any] = given if isinstance(given, dict) else {}
        request["parameters"] = {**parameters, "authorization": key.decode("latin-1")}
        content = json.dumps(request).encode()
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        headers = [(k, v) for k, v in headers if k != "content-length"]
        with self.drain.track():
            await self._forward(scope, replay, send, headers)

    async def _forward(self, scope: dict[str, Any], receive: Any, send: Any, headers: list[Any]) -> None:
        import httpx

        url = self.upstream + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")

        async def body() -> AsyncIterator[bytes]:
            from siliconlab.serve.front_guard import BODY_TIMEOUT_S

            read = 0
            while True:
                try:
                    message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
                except asyncio.TimeoutError:  # a client that stopped sending: Triton's connection is let go
                    raise ConnectionAbortedError("the body stopped coming") from None
                if message["type"] == "http.disconnect":
                    raise ConnectionAbortedError("the client left")
                read += len(message.get("body", b""))
                if read > MAX_BODY_BYTES:  # a chunked body that never said its length
                    raise TooLarge(f"the request body is over {MAX_BODY_BYTES} bytes")
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        request = self.client.build_request(scope["method"], url, headers=headers, content=body())
        try:
            reply = await self.client.send(request, stream=True)
        except ConnectionAbortedError as exc:
            return await _answer(send, 408, str(exc))
        except TooLarge as exc:
            return await _answer(send, 413, str(exc))
        except httpx.HTTPError as exc:
            return await _answer(send, 502, f"Triton did not answer: {type(exc).__name__}")
        try:
            chunks: Any = reply.aiter_raw()
            if reply.status_code == 500:  # Triton's 500s are one line of JSON
                raw = b"".join([chunk async for chunk in chunks])
                unparsed = _unparsed(raw)
                if unparsed is not None:
                    return await _answer(send, 400, unparsed)
                chunks = _once(raw)
            kept = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.multi_items()
                    if k.lower() not in DROPPED]  # fmt: skip
            await send({"type": "http.response.start", "status": reply.status_code, "headers": kept})
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await reply.aclose()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        import httpx

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
                self.client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s, connect=10.0), limits=limits)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _unparsed(body: bytes) -> str | None:
    """Triton's message when its 500 is a body it could not parse (truncated JSON, shape -1, an INT64 value out of
    range, a wrong JSON type): the client's fault, so a 400; None for any other 500."""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(body).get("error")
        if isinstance(message, str) and message.startswith(UNPARSED):
            return f"the body is not a valid KServe request: {message}"
    return None


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def _answer(send: Any, status: int, message: str, extra: list[Any] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- gRPC ------------------------------------------------------------------------------------------------------


class GrpcGateway:
    """A generic gRPC handler forwarding every KServe method, bytes unchanged, to Triton's private gRPC port."""

    def __init__(self, upstream: str, keys: tuple[str, ...], drain: Drain):
        self.upstream, self.keys, self.drain = upstream, keys, drain
        self.channel: Any = None

    def handler(self) -> Any:
        import grpc

        gateway = self

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: Any) -> Any:
                method = details.method
                if not method.startswith(GRPC_SERVICE):
                    return None
                if method.endswith("/ModelStreamInfer"):
                    return grpc.stream_stream_rpc_method_handler(gateway._stream(method))
                return grpc.unary_unary_rpc_method_handler(gateway._unary(method))

        return Handler()

    async def _admit(self, method: str, context: Any) -> list[tuple[str, str]]:
        """The metadata to forward, or the call aborted with the reason."""
        import grpc

        metadata = [(k, v) for k, v in context.invocation_metadata() or () if not k.startswith(":")]
        given = next((v for k, v in metadata if k == "authorization"), None)
        if method not in OPEN_GRPC and not authorized(given, self.keys):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key: send metadata "
                                "'authorization: Bearer <key>'")  # fmt: skip
        if any(word in method.removeprefix(GRPC_SERVICE) for word in ADMIN_GRPC):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this API is off on this server")
        if self.drain.draining and method != GRPC_SERVICE + "ServerLive":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is draining: not ready")
        return [(k, v) for k, v in metadata if k not in DROPPED]

    def _unary(self, method: str) -> Any:
        import grpc

        async def call(request: bytes, context: Any) -> bytes:
            metadata = await self._admit(method, context)
            with self.drain.track():
                try:
                    return await self.channel.unary_unary(method)(request, metadata=metadata,
                                                                  timeout=context.time_remaining())  # fmt: skip
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")
                    raise  # abort() raises; were it ever to return, the upstream error still goes up

        return call

    def _stream(self, method: str) -> Any:
        import grpc

        async def call(requests: Any, context: Any) -> AsyncIterator[bytes]:
            metadata = await self._admit(method, context)
            with self.drain.track():
                upstream = self.channel.stream_stream(method)(requests, metadata=metadata,
                                                              timeout=context.time_remaining())  # fmt: skip
                try:
                    async for response in upstream:
                        yield response
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")
                finally:
                    if not upstream.done():  # the client left: Triton sees the cancel and stops generating
                        upstream.cancel()

        return call


# -- both, in a thread of the serving process ------------------------------------------------------------------


class Gateway:
    """The HTTP and gRPC gateways on `host`, one event loop in a background thread."""

    def __init__(self, host: str, http_port: int, grpc_port: int, upstream_http: str, upstream_grpc: str,
                 keys: tuple[str, ...]):  # fmt: skip
        self.host, self.http_port, self.grpc_port = host, http_port, grpc_port
        self.drain = Drain()
        self.http = HttpGateway(upstream_http, keys, self.drain)
        self.grpc = GrpcGateway(upstream_grpc, keys, self.drain)
        self._uvicorn: Any = None
        self._grpc_server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._started = threading.Event()

    def start(self, timeout_s: float = 20.0) -> None:
        self._thread = threading.Thread(target=self._run, name="siliconlab-gateway", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s) or self._failed is not None:
            raise SiliconlabError(f"the gateway did not start on {self.host}: {self._failed or 'timed out'}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start() or seen as a dead thread
            self._failed = exc
            self._started.set()

    async def _main(self) -> None:
        import grpc
        import uvicorn

        self._loop = asyncio.get_running_loop()
        unbounded = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        self.grpc.channel = grpc.aio.insecure_channel(self.grpc.upstream, options=unbounded)
        self._grpc_server = grpc.aio.server(options=_GRPC_OPTIONS)
        self._grpc_server.add_generic_rpc_handlers((self.grpc.handler(),))
        address = f"[{self.host}]" if ":" in self.host else self.host
        self._grpc_server.add_insecure_port(f"{address}:{self.grpc_port}")
        await self._grpc_server.start()
        config = uvicorn.Config(self.http, host=self.host, port=self.http_port, log_level="warning", lifespan="on",
                                timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024)  # fmt: skip
        self._uvicorn = uvicorn.Server(config)
        serving = asyncio.ensure_future(self._uvicorn.serve())
        while not self._uvicorn.started:
            if serving.done():
                serving.result()
                raise SiliconlabError(f"port {self.http_port} could not be bound")
            await asyncio.sleep(0.02)
        self._started.set()
        await serving
        await self._grpc_server.stop(1.0)
        await self.grpc.channel.close()

    def drain_and_stop(self, timeout_s: float) -> int:
        """Refuse new requests, let the accepted ones finish (up to `timeout_s`); the number cut off."""
        self.drain.start()
        left = self.drain.wait(timeout_s)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        return left


#: gRPC messages up to the HTTP body bound in, answers of any size out.
_GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_BODY_BYTES), ("grpc.max_send_message_length", -1)]
