"""What every OpenAI route shares: the Triton server as the front sees it (`Backend`) and OpenAI-shaped errors.

Apart from openai_front.py (the app and the embeddings route) so the chat route (openai_chat.py) can use them
while the front mounts it: the routes look down to this module, never at each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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
