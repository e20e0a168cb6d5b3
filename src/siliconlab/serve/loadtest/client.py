"""One asyncio tritonclient (HTTP or gRPC) per load test: requests, error kinds, server statistics.

asyncio rather than threads: the load generator shares the machine's cores with the server it measures, and
one event loop costs far less CPU per request than a thread per connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError

#: Error kinds every step counts (in this order in tables).
ERROR_KINDS = ("rejected", "4xx", "5xx", "timeout", "connection", "other")
#: gRPC status codes -> the kinds above ("rejected" is Triton's queue-full / unavailable answer).
GRPC_KINDS = {
    "UNAVAILABLE": "rejected",
    "RESOURCE_EXHAUSTED": "rejected",
    "DEADLINE_EXCEEDED": "timeout",
    "INVALID_ARGUMENT": "4xx",
    "NOT_FOUND": "4xx",
    "FAILED_PRECONDITION": "4xx",
    "OUT_OF_RANGE": "4xx",
    "UNIMPLEMENTED": "4xx",
    "INTERNAL": "5xx",
    "UNKNOWN": "5xx",
    "DATA_LOSS": "5xx",
    "CANCELLED": "connection",
}


def error_kind(exc: BaseException) -> str:
    """Which kind of failure a request met: the server said no (rejected / 4xx / 5xx), or it never answered."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        if status.startswith("StatusCode."):
            return GRPC_KINDS.get(status.removeprefix("StatusCode."), "other")
        if status.isdigit():
            code = int(status)
            return "rejected" if code in (429, 503) else "4xx" if code < 500 else "5xx"
        return "connection" if "connect" in str(exc).lower() else "other"
    if isinstance(exc, (OSError, ConnectionError)) or type(exc).__module__.startswith(("aiohttp", "httpx")):
        return "connection"
    return "other"


@dataclass(frozen=True)
class Signature:
    """What the load test needs to know about the model: its text input and the output it checks."""

    text_input: str
    outputs: tuple[str, ...]
    checked: str  # the numeric output compared with the single-request reference (embedding / scores)


def signature_of(metadata: dict[str, Any]) -> Signature:
    texts = [i["name"] for i in metadata.get("inputs", []) if i.get("datatype") == "BYTES"]
    if not texts:
        raise SiliconlabError(f"model {metadata.get('name')} has no BYTES (text) input: cannot send it text")
    text_input = "text" if "text" in texts else texts[0]
    outputs = tuple(o["name"] for o in metadata.get("outputs", []))
    numeric = [o["name"] for o in metadata.get("outputs", []) if o.get("datatype") in ("FP32", "FP16", "FP64")]
    if not numeric:
        raise SiliconlabError(f"model {metadata.get('name')} has no floating-point output to check answers with")
    checked = next((n for n in ("embedding", "scores") if n in numeric), numeric[0])
    return Signature(text_input, outputs, checked)


class TritonLoadClient:
    """A KServe v2 client over tritonclient's asyncio API, one per event loop."""

    def __init__(self, url: str, protocol: str, model: str, connections: int):
        self.url, self.protocol, self.model = url, protocol, model
        self.connections = connections
        self.signature: Signature | None = None
        self.statistics_error = ""  # why the server's statistics could not be read, if they could not
        self._client: Any = None
        from siliconlab.serve.auth import client_key

        key = client_key()  # SILICONLAB_API_KEY or SILICONLAB_API_KEY_FILE: never a command-line value
        self.headers = {"authorization": f"Bearer {key}"} if key else None

    async def __aenter__(self) -> TritonLoadClient:
        address = self.url.split("://", 1)[-1].rstrip("/")
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as grpcclient

            self._client = grpcclient.InferenceServerClient(address)
        else:
            import tritonclient.http.aio as httpclient

            self._client = httpclient.InferenceServerClient(address, conn_limit=self.connections)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    async def ready(self) -> None:
        """Fail in one line when the server or the model is not there, before any load is sent."""
        try:
            live = await self._client.is_model_ready(self.model, headers=self.headers)
        except Exception as exc:
            raise SiliconlabError(f"no Triton server answers at {self.url} ({self.protocol}): {exc}") from None
        if not live:
            raise SiliconlabError(f"model '{self.model}' is not ready at {self.url} (wrong --model name?)")
        metadata = await self._client.get_model_metadata(self.model, headers=self.headers, **self._json())
        self.signature = signature_of(metadata)

    def _json(self) -> dict[str, Any]:
        return {"as_json": True} if self.protocol == "grpc" else {}

    async def infer(self, text: str, timeout: float) -> dict[str, np.ndarray]:
        """One request with one text; raises what the client raised (classified by error_kind)."""
        if self.protocol == "grpc":
            import tritonclient.grpc.aio as module
        else:
            import tritonclient.http.aio as module
        assert self.signature is not None
        data = module.InferInput(self.signature.text_input, [1, 1], "BYTES")
        data.set_data_from_numpy(np.array([[text.encode("utf-8")]], dtype=np.object_))
        wanted = [module.InferRequestedOutput(name) for name in self.signature.outputs]
        call = self._client.infer(self.model, [data], outputs=wanted, headers=self.headers)
        result = await asyncio.wait_for(call, timeout)
        return {name: result.as_numpy(name) for name in self.signature.outputs}

    async def statistics(self) -> dict[str, Any] | None:
        """The model's cumulative statistics (GET /v2/models/<m>/stats), or None when the server has none."""
        try:
            stats = await self._client.get_inference_statistics(self.model, headers=self.headers, **self._json())
        except Exception as exc:  # e.g. PyTriton restricts the endpoint by default: the load test goes on without
            self.statistics_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None
        models = stats.get("model_stats") or []
        return models[0] if models else None
