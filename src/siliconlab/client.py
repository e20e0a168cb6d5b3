"""A small Python client for `siliconlab serve`, over NVIDIA's tritonclient (HTTP or gRPC).

    from siliconlab.client import Client
    with Client("127.0.0.1:8000") as client:          # or Client("127.0.0.1:8001", protocol="grpc")
        vectors = client.embed(["a first text", "a second one"])   # (2, 384) float32, L2-normalised
        client.classify("what a film", model="sentiment")       # [{label, score, scores}]
        client.reply("hello")                                    # {reply, score, matched}
        for piece in client.stream_chat("hi", model="smollm2-chat", max_tokens=32):   # a generative model
            print(piece, end="")                                 # client.last_stats: TTFT, tokens/s, ...

Imports neither torch nor transformers: the server does the work. A server error (bad input, overload)
raises `ServeError` with the server's one-line message and its status. A server with API keys wants
`Authorization: Bearer <key>`: the client sends `api_key`, else `SILICONLAB_API_KEY`, else the first key of
`SILICONLAB_API_KEY_FILE` (serve/auth.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from siliconlab.errors import ServeError, SiliconlabError

__all__ = ["Client", "ServeError"]


class Client:
    """Talks to one Triton server; `url` is host:port of its HTTP (default) or gRPC endpoint."""

    def __init__(self, url: str = "127.0.0.1:8000", protocol: str = "http", timeout_s: float = 60.0,
                 api_key: str | None = None):  # fmt: skip
        from siliconlab.serve.auth import client_key

        if protocol not in ("http", "grpc"):
            raise SiliconlabError(f"protocol must be 'http' or 'grpc', got '{protocol}'")
        key = api_key or client_key()
        #: sent with every call (gRPC metadata keys are lower case)
        self.headers: dict[str, str] | None = {"authorization": f"Bearer {key}"} if key else None
        self.url = url.split("://", 1)[-1].rstrip("/")
        self.protocol = protocol
        self.timeout_s = timeout_s
        if protocol == "http":
            import tritonclient.http as module

            self._client = module.InferenceServerClient(self.url, network_timeout=timeout_s,
                                                        connection_timeout=timeout_s)  # fmt: skip
        else:
            import tritonclient.grpc as module

            self._client = module.InferenceServerClient(self.url)
        self._module = module
        self._configs: dict[str, dict[str, Any]] = {}
        self.last_stats: dict[str, Any] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def ready(self, model: str | None = None) -> bool:
        """Whether the server (or one model) is ready to answer."""
        try:
            h = self.headers
            return bool(
                self._client.is_model_ready(model, headers=h) if model else self._client.is_server_ready(headers=h)
            )
        except Exception:  # a refused connection means "not ready", which is the question asked
            return False

    def infer(self, model: str, texts: list[str], outputs: list[str]) -> dict[str, np.ndarray]:
        """Raw outputs, one row per text: requests of up to the model's max batch size each (the server batches
        them with other clients' requests)."""
        step = max(1, int(self._config(model).get("max_batch_size", 0)) or len(texts))
        parts = [self._infer(model, texts[i : i + step], outputs) for i in range(0, len(texts), step)]
        return {name: np.concatenate([part[name] for part in parts]) for name in outputs}

    def _infer(self, model: str, texts: list[str], outputs: list[str]) -> dict[str, np.ndarray]:
        from tritonclient.utils import InferenceServerException

        data = np.array([[t.encode("utf-8") if isinstance(t, str) else bytes(t)] for t in texts], dtype=object)
        tensor = self._module.InferInput("text", list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        wanted = [self._module.InferRequestedOutput(name) for name in outputs]
        try:
            if self.protocol == "grpc":
                result = self._client.infer(model, [tensor], outputs=wanted, client_timeout=self.timeout_s,
                                            headers=self.headers)  # fmt: skip
            else:
                result = self._client.infer(model, [tensor], outputs=wanted, headers=self.headers)
        except InferenceServerException as exc:
            raise ServeError(f"{model}: {exc.message() or exc}", str(exc.status())) from None
        return {name: result.as_numpy(name) for name in outputs}

    def embed(self, texts: str | list[str], model: str = "minilm") -> np.ndarray:
        """Sentence embeddings, one row per text (a single text gives one row too)."""
        return self.infer(model, _texts(texts), ["embedding"])["embedding"]

    def classify(self, texts: str | list[str], model: str = "sentiment") -> list[dict[str, Any]]:
        """[{label, score, scores: {label: probability}}] per text."""
        out = self.infer(model, _texts(texts), ["label", "score", "scores"])
        labels = self.labels(model)
        return [{"label": _text(label), "score": float(score[0]), "scores": dict(zip(labels, map(float, scores)))}
                for label, score, scores in zip(out["label"], out["score"], out["scores"])]  # fmt: skip

    def reply(self, text: str, model: str = "chat") -> dict[str, Any]:
        """{reply, score, matched}: the chat model's answer to one message."""
        out = self.infer(model, [text], ["reply", "score", "matched"])
        return {
            "reply": _text(out["reply"][0]),
            "score": float(out["score"][0][0]),
            "matched": _text(out["matched"][0]),
        }

    def stream_chat(self, message: str | list[dict[str, str]], model: str = "smollm2-chat",
                    max_tokens: int | None = None) -> Iterator[str]:  # fmt: skip
        """The reply's pieces as the server writes them (a generative model served by `siliconlab serve`);
        `message` is one text or a conversation [{role, content}]. `last_stats` holds the figures once it ends.
        Leaving the loop early stops generation on the server."""
        from siliconlab.client_stream import grpc_stream, http_stream

        stream = grpc_stream if self.protocol == "grpc" else http_stream
        self.last_stats = {}
        for kind, value in stream(self, model, message, max_tokens):
            if kind == "stats":
                self.last_stats = value
            else:
                yield value

    def chat(self, message: str | list[dict[str, str]], model: str = "smollm2-chat",
             max_tokens: int | None = None) -> dict[str, Any]:  # fmt: skip
        """{reply, tokens, ttft_ms, tokens_per_s, prompt_tokens, truncated_tokens, stopped, unit, ms}."""
        reply = "".join(self.stream_chat(message, model, max_tokens)).strip()
        return {"reply": reply, **self.last_stats}

    def labels(self, model: str) -> list[str]:
        """A classifier's label names in the order of its `scores` (from the model config's parameters)."""
        value = self._config(model).get("parameters", {}).get("labels", {}).get("string_value", "")
        return value.split(",") if value else []

    def _config(self, model: str) -> dict[str, Any]:
        """The model's config as JSON-like dicts (both protocols), fetched once."""
        if model not in self._configs:
            from tritonclient.utils import InferenceServerException

            try:
                if self.protocol == "grpc":
                    from google.protobuf.json_format import MessageToDict

                    message = self._client.get_model_config(model, headers=self.headers).config
                    config = MessageToDict(message, preserving_proto_field_name=True)
                else:
                    config = self._client.get_model_config(model, headers=self.headers)
            except InferenceServerException as exc:
                raise ServeError(f"{model}: {exc.message() or exc}", str(exc.status())) from None
            self._configs[model] = config
        return self._configs[model]


def _texts(texts: str | list[str]) -> list[str]:
    items = [texts] if isinstance(texts, (str, bytes)) else list(texts)
    if not items:
        raise SiliconlabError("no text given: pass at least one text")
    return items


def _text(value: Any) -> str:
    value = value[0] if isinstance(value, np.ndarray) else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
