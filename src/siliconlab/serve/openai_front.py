"""A thin OpenAI-compatible front (FastAPI + uvicorn) that forwards to the Triton server over gRPC.

Most embedding clients speak the OpenAI API, which Triton does not. The front holds no model: every
`POST /v1/embeddings` becomes Triton requests (texts in chunks of the batch limit, token-id rows to the
`-ids` model), so Triton's dynamic batching and bounded queue apply to these clients too. Errors come back in
OpenAI's JSON shape. Routes are grouped by `routers()`; `/v1/chat/completions` is in openai_chat.py.
"""

from __future__ import annotations

import base64
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

import numpy as np
from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations from these globals
from pydantic import BaseModel, StrictInt, StrictStr

from siliconlab.errors import SiliconlabError
from siliconlab.serve.front_guard import Guard
from siliconlab.serve.openai_backend import ApiError, AsciiJSON, Backend, Outputs, in_turn, run_texts, shorten

__all__ = ["AsciiJSON", "Front", "build_app", "embed", "routers", "run_texts", "shorten"]  # the moved names stay here

#: Token ids travel as int64: anything outside cannot even be a tensor (the model's vocabulary is checked there).
INT64 = 2**63


class EmbeddingsRequest(BaseModel):
    model: str
    #: strict: `true`/`false` are not token ids, and a number is not a text
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None  # JSON true or "64" is not a size (OpenAI refuses them too)
    user: str | None = None


async def embed(backend: Backend, request: EmbeddingsRequest, left: Any = None) -> dict[str, Any]:
    """OpenAI's embeddings response for one request: texts go to `model`, token-id rows to `model-ids`, one
    batch after another; `left()` (the client disconnected) is asked between batches, and no batch starts after."""
    if request.model not in backend.embedding_models:
        known = ", ".join(backend.embedding_models) or "none"
        raise ApiError(404, f"model '{request.model}' is not served here (embedding models: {known})",
                       param="model", code="model_not_found")  # fmt: skip
    width = backend.embedding_models[request.model]
    if request.dimensions is not None and not 1 <= request.dimensions <= width:
        raise ApiError(400, f"'dimensions' must be 1 to {width} (the size of '{request.model}'), got "
                       f"{request.dimensions}", param="dimensions")  # fmt: skip
    items = [request.input] if isinstance(request.input, str) or _is_ids(request.input) else list(request.input)
    if not items:
        raise ApiError(400, "'input' is empty: give a text, a list of texts, or token ids", param="input")
    limit = backend.options.max_texts
    if len(items) > limit:
        raise ApiError(400, f"'input' holds {len(items)} items; at most {limit} per call (--max-texts)", param="input")
    texts = [item for item in items if isinstance(item, str)]  # the model allows all texts or all token ids
    if texts:
        out, tokens = await run_texts(backend, request.model, texts, left)
    else:
        out, tokens = await _embed_ids(backend, request.model, items, left)
    vectors = shorten(out["embedding"], request.dimensions)
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, request.encoding_format)}
            for i, v in enumerate(vectors)]  # fmt: skip
    return {"object": "list", "data": data, "model": request.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) for v in value)


async def _embed_ids(backend: Backend, model: str, rows: list[Any], left: Any) -> Outputs:
    def fine(v: Any) -> bool:
        return type(v) is int and 0 <= v < INT64  # bool is an int subclass: true/false are not token ids

    if not all(isinstance(row, list) and row and all(fine(v) for v in row) for row in rows):
        raise ApiError(400, "token-id input must be a non-empty list of integers from 0 to 2^63-1 per row",
                       param="input")  # fmt: skip
    total, limit = sum(len(row) for row in rows), backend.options.max_request_tokens
    if total > limit:
        raise ApiError(400, f"'input' holds {total} token ids; at most {limit} per call (--max-request-tokens)",
                       param="input")  # fmt: skip
    arrays = (np.array([row], dtype=np.int64) for row in rows)
    calls = ((f"{model}-ids", {"input_ids": ids, "attention_mask": np.ones_like(ids)}) for ids in arrays)
    return await in_turn(backend, calls, left, ("embedding", "tokens"))


def _encode(vector: np.ndarray, encoding: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(v) for v in vector]


# -- routes ----------------------------------------------------------------------------------------------------


def models_router(backend: Backend) -> Any:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "siliconlab"}
                for name in [*backend.embedding_models, *backend.chat_models]]  # fmt: skip
        return {"object": "list", "data": data}

    return router


def embeddings_router(backend: Backend) -> Any:
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/v1/embeddings")
    async def embeddings(request: EmbeddingsRequest, http: Request) -> dict[str, Any]:
        from siliconlab.serve.openai_chat import unless_disconnected

        return await unless_disconnected(http, embed(backend, request, http.is_disconnected))

    return router


def routers(backend: Backend, tei: tuple[Any, Any] = (None, None)) -> list[Any]:
    """Every route group of the front: models, embeddings, chat completions (serve/openai_chat.py), and TEI's
    routes (serve/tei.py) over `tei`, the (embedding, classifier) models they use."""
    from siliconlab.serve.openai_chat import chat_router
    from siliconlab.serve.tei import tei_router

    return [models_router(backend), embeddings_router(backend), chat_router(backend), tei_router(backend, *tei)]


def build_app(backend: Backend, tei: tuple[Any, Any] = (None, None)) -> Any:
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException
    from tritonclient.grpc import aio as grpcclient

    @asynccontextmanager
    async def lifespan(app: Any):
        backend.client = grpcclient.InferenceServerClient(backend.grpc_url)
        yield
        await backend.client.close()

    app = FastAPI(
        title="siliconlab OpenAI-compatible front", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    for router in routers(backend, tei):
        app.include_router(router)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return AsciiJSON(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [p for p in first.get("loc", ()) if p != "body"]
        where = str(loc[0]) if loc else ""  # the request's field (its inner path names pydantic's union branches)
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":  # its loc is a character offset, not a parameter
            message, where = f"the body is not valid JSON ({first.get('ctx', {}).get('error', message)})", ""
        return AsciiJSON(ApiError(400, message, param=where or None).body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return AsciiJSON(ApiError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> JSONResponse:  # a bug of ours: one JSON line, never a traceback
        from siliconlab.log import log

        if isinstance(exc, RecursionError):  # JSON nested thousands deep: the parser gave up
            return AsciiJSON(ApiError(400, "the body nests too deeply to be read").body(), status_code=400)
        log.error("the OpenAI front failed on a request", exc_info=exc)
        body = ApiError(500, "the server failed on this request; its log says why", "server_error").body()
        return AsciiJSON(body, status_code=500)

    from siliconlab.serve.tei import TEI_PATHS

    return Guard(app, backend.options.api_keys, backend.options.max_request_bytes, TEI_PATHS)


class Front:
    """The front in a background thread of the serving process; `stop()` lets in-flight calls finish."""

    def __init__(self, server: Any, bindings: list[Any], host: str, port: int):
        from siliconlab.serve.server import _url_host

        texts = [b for b in bindings if b.openai_embeddings]
        widths = {b.name: b.outputs[0].shape[0] for b in texts}
        chats = {b.name: int(b.parameters["max_tokens_limit"]) for b in bindings if b.decoupled}
        stops = {b.name: b.infer.cancel_dir for b in bindings if b.decoupled and b.infer.cancel_dir is not None}
        self.backend = Backend(server.triton_grpc_url, server.options.max_batch, widths, chats, stops, server.options)
        from siliconlab.serve.tei import tei_models

        #: the models TEI's /embed and /predict use (serve/tei.py)
        self.tei = tei_models(bindings)
        self.host, self.port = host, port
        self.url = f"http://{_url_host(host)}:{port}"
        self._drain_s = server.options.drain_timeout_s
        self._uvicorn: Any = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        import uvicorn

        config = uvicorn.Config(build_app(self.backend, self.tei), host=self.host, port=self.port, log_level="warning",
                                timeout_graceful_shutdown=self._drain_s)  # fmt: skip
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, name="openai-front", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SiliconlabError(f"the OpenAI front did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(self._drain_s + 5)
