"""What Triton serves, in Triton's terms: a model's tensors, its batched callable, per-request errors.

Each callable gets the requests of one dynamic batch. Every request is checked on its own; the good ones run
as one batch and are split back per request. A bad request gets its own error answer (an INVALID_ARG error,
HTTP 400 / gRPC INVALID_ARGUMENT) while the others in the batch are answered; if the model itself raises, the
batch is retried request by request, so only the request that makes it fail gets the error (INTERNAL, HTTP
500), one line, no traceback. Errors travel as two reserved output keys that the model file in the model store
turns into Triton errors (server.py patches it in). serve/models.py (batched task models) and
serve/generative.py (streaming ones) both build on this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

from siliconlab.errors import SiliconlabError
from siliconlab.log import log

#: Reserved response keys: an error message and its Triton error code name (see server.ERROR_PATCH).
ERROR_KEY = "__siliconlab_error__"
CODE_KEY = "__siliconlab_code__"

Request = dict[str, np.ndarray]
Response = dict[str, np.ndarray]
Rows = dict[str, np.ndarray]


class BadRequest(Exception):
    """A request the model cannot answer as sent: its answer is a 400 with this message."""


def error_response(message: str, code: str = "INVALID_ARG") -> Response:
    return {ERROR_KEY: np.array([message.encode("utf-8")], dtype=object), CODE_KEY: np.array([code.encode()])}


@dataclass
class Spec:
    """One input or output tensor as the model config declares it (shape without the batch dimension)."""

    name: str
    dtype: Any
    shape: tuple[int, ...]
    optional: bool = False


@dataclass
class Binding:
    """One model as Triton will serve it: its name, tensors, callable and config parameters."""

    name: str
    inputs: list[Spec]
    outputs: list[Spec]
    infer: ModelCallable
    parameters: dict[str, str] = field(default_factory=dict)
    #: the siliconlab model and unit behind it, for the startup lines and `GET /v1/models`
    model: str = ""
    unit: str = ""
    task: str = ""
    #: a streaming model (Triton's decoupled transaction policy, no batching): serve/generative.py
    decoupled: bool = False
    #: answers OpenAI's /v1/embeddings (a text in, an `embedding` vector out)
    openai_embeddings: bool = False
    #: the text model's tokenizer, for the TEI front's /tokenize (serve/tei.py); None where texts do not go in
    tokenizer: Any = None


class ModelCallable(Protocol):
    """What Triton calls for one model: requests in, responses out (a streaming model yields them: generative.py).
    `keys` are the server's API keys, set by Server.start and checked again by the model."""

    keys: tuple[str, ...]

    def __call__(self, requests: list[Any]) -> Any: ...


def batched(name: str, check: Callable[[Request], list[Any]], run: Callable[[list[Any]], Rows]) -> ModelCallable:
    """A Triton callable: `check` each request into items (or BadRequest), `run` all items at once."""

    def infer(requests: list[Any]) -> list[Response]:
        try:
            allowed = [key_given(request, model.keys) for request in requests]
            return answer([dict(request.items()) for request in requests], allowed)
        except Exception:  # a bug of ours must not leak a traceback to the clients either
            log.exception("model %s failed outside the model call", name)
            return [error_response(f"model '{name}' failed; the server log says why", "INTERNAL")] * len(requests)

    def answer(requests: list[Request], allowed: list[bool]) -> list[Response]:
        responses: list[Response | None] = [None] * len(requests)
        items: dict[int, list[Any]] = {}
        for index, request in enumerate(requests):
            if not allowed[index]:
                responses[index] = error_response(NO_KEY)
                continue
            try:
                items[index] = check(request)
            except BadRequest as exc:
                responses[index] = error_response(str(exc))
        if items:
            try:
                _split(run([item for group in items.values() for item in group]), items, responses)
            except Exception:  # retried alone below, so only the culprit fails
                log.warning("model %s failed on a batch of %d requests; retrying them one by one", name, len(items))
                for index, group in items.items():
                    try:
                        _split(run(group), {index: group}, responses)
                    except Exception as exc:  # answered as this request's error, logged whole
                        log.exception("model %s failed on a request", name)
                        responses[index] = error_response(f"model '{name}' failed on this request: {_one_line(exc)}",
                                                          "INTERNAL")  # fmt: skip
        return [r if r is not None else error_response("no answer was produced", "INTERNAL") for r in responses]

    model = cast(ModelCallable, infer)  # the function, with the attribute `keys` (read by infer when called)
    model.keys = ()  # the server's API keys, set by Server.start
    return model


NO_KEY = "missing or wrong API key: send 'Authorization: Bearer <key>'"


def key_given(request: Any, keys: tuple[str, ...]) -> bool:
    """Whether the request carries a key (Triton forwards the Authorization header as a request parameter)."""
    from siliconlab.serve.auth import authorized

    if not keys:
        return True
    parameters = getattr(request, "parameters", None) or {}
    given = next((v for k, v in parameters.items() if k.lower() == "authorization"), None)
    return isinstance(given, str) and authorized(given, keys)


def _split(rows: Rows, items: dict[int, list[Any]], responses: list[Response | None]) -> None:
    start = 0
    for index, group in items.items():
        stop = start + len(group)
        responses[index] = {key: value[start:stop] for key, value in rows.items()}
        start = stop


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, SiliconlabError) else f"{type(exc).__name__}: {text}"[:500]
