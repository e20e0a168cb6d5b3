"""What every route of the front shares: the Triton server as the front sees it (`Backend`), OpenAI-shaped errors,
texts through a text model in turns (`run_texts`), OpenAI's `dimensions` (`shorten`), and the JSON response.

Apart from openai_front.py (the app and the embeddings route) so the chat route (openai_chat.py) and TEI's routes
(tei.py) can use them while the front mounts them: the routes look down to this module, never at each other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.text import check_text

#: Triton's error status (gRPC) -> HTTP status and OpenAI error type.
STATUS = {
    "StatusCode.INVALID_ARGUMENT": (400, "invalid_request_error"),
    "StatusCode.NOT_FOUND": (404, "invalid_request_error"),
    "StatusCode.UNAVAILABLE": (503, "server_error"),
    "StatusCode.RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
}


class ApiError(Exception):
    """An OpenAI-shaped error: HTTP status, message, type, and the parameter at fault."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class Backend:
    """The Triton server as the front sees it: its gRPC address, batch limit and the embedding models."""

    def __init__(self, grpc_url: str, max_batch: int, embedding_models: dict[str, int],
                 chat_models: dict[str, int] | None = None, cancel_dirs: dict[str, Path] | None = None,
                 options: Any = None):  # fmt: skip
        from siliconlab.serve.config import ServeOptions

        self.grpc_url = grpc_url
        self.max_batch = max_batch
        #: the limits and keys (`ServeOptions`)
        self.options = options or ServeOptions()
        #: what Triton's models check (the server's first key): the front talks to Triton's private port
        keys = self.options.api_keys
        self.headers = {"authorization": f"Bearer {keys[0]}"} if keys else None
        self.embedding_models = embedding_models  # name -> width
        self.chat_models = chat_models or {}  # name -> largest max_tokens
        #: chat model -> the folder where a request's key stops it (serve/generative.py); absent: cancel instead
        self.cancel_dirs = cancel_dirs or {}
        self.client: Any = None

    async def infer(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        from tritonclient.grpc import aio as grpcclient
        from tritonclient.utils import InferenceServerException, np_to_triton_dtype

        tensors = []
        for name, value in inputs.items():
            tensor = grpcclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        wanted = [grpcclient.InferRequestedOutput(name) for name in outputs]
        try:
            extra = {"headers": self.headers} if self.headers else {}  # the server's key, for the model's check
            result = await self.client.infer(model, tensors, outputs=wanted, **extra)
        except InferenceServerException as exc:
            status, kind = STATUS.get(str(exc.status()), (500, "server_error"))
            raise ApiError(status, exc.message() or str(exc), kind) from None
        return {name: result.as_numpy(name) for name in outputs}


def shorten(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """OpenAI's `dimensions`: the first N components, L2-normalised again. Matryoshka-trained models keep most
    of their quality this way; MiniLM is not one (docs/serving.md measures what it loses)."""
    if dimensions is None or dimensions >= vectors.shape[1]:
        return vectors
    head = np.asarray(vectors[:, :dimensions], dtype=np.float32)
    norms = np.linalg.norm(head, axis=1, keepdims=True)
    return head / np.maximum(norms, np.finfo(np.float32).tiny)  # an all-zero head stays zero, never NaN


Outputs = tuple[dict[str, np.ndarray], int]


async def run_texts(backend: Backend, model: str, texts: list[str], left: Any = None,
                    outputs: tuple[str, ...] = ("embedding", "tokens")) -> Outputs:  # fmt: skip
    """Texts through a text model, in chunks of the batch limit: each output concatenated, and the tokens read."""
    for index, text in enumerate(texts):
        try:
            check_text(text, "input" if len(texts) == 1 else f"input[{index}]")
        except UsageError as exc:
            raise ApiError(400, str(exc), param="input") from None
    chunks = [texts[i : i + backend.max_batch] for i in range(0, len(texts), backend.max_batch)]
    calls = ((model, {"text": np.array([[t.encode()] for t in chunk], dtype=object)}) for chunk in chunks)
    return await in_turn(backend, calls, left, outputs)


async def in_turn(
    backend: Backend, calls: Any, left: Any, outputs: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], int]:
    """Run the calls two at a time (one queued while one runs), stopping when the client has left or the tokens
    read pass the limit: abandoned work never reaches Triton's queue, and a call still queued there is cancelled
    (its gRPC call, which Triton's batcher then drops) when this request is."""
    limit = backend.options.max_request_tokens
    results: list[dict[str, np.ndarray]] = []
    tokens, pending = 0, []
    try:
        for model, inputs in calls:
            if left is not None and await left():
                raise ApiError(499, "the client closed the connection", "server_error")
            pending.append(asyncio.ensure_future(backend.infer(model, inputs, list(outputs))))
            while len(pending) >= 2 or (pending and tokens > limit):
                results.append(await pending.pop(0))
                tokens += int(results[-1]["tokens"].sum())
            if tokens > limit:
                break
        while pending:
            results.append(await pending.pop(0))
            tokens += int(results[-1]["tokens"].sum())
    finally:
        for task in pending:
            task.cancel()
    if tokens > limit:
        raise ApiError(400, f"'input' holds more than {limit} tokens; at most {limit} per call (--max-request-tokens)",
                       param="input")  # fmt: skip
    return {name: np.concatenate([r[name] for r in results]) for name in outputs}, tokens


def AsciiJSON(body: Any, status_code: int) -> Any:  # noqa: N802 - a response class, built on first use
    """A JSON response escaped to ASCII: a lone surrogate echoed from the request stays valid JSON (Starlette's own
    JSONResponse encodes UTF-8 and fails on it, answering a plain-text 500)."""
    import json

    from fastapi.responses import Response

    return Response(json.dumps(body, ensure_ascii=True), status_code=status_code, media_type="application/json")
