"""The inference callables Triton calls: one per served model, over the task pipelines of `siliconlab.load`.

Each callable gets the requests of one dynamic batch. Every request is checked on its own; the good ones run
as one batch through the pipeline and are split back per request. A bad request gets its own error answer (an
INVALID_ARG error, HTTP 400 / gRPC INVALID_ARGUMENT) while the others in the batch are answered; if the model
itself raises, the batch is retried request by request, so only the request that makes it fail gets the error
(INTERNAL, HTTP 500), one line, no traceback. Errors travel as two reserved output keys that the model file in
the model store turns into Triton errors (server.py patches it in).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from siliconlab.errors import SiliconlabError
from siliconlab.log import log
from siliconlab.text import check_text

if TYPE_CHECKING:
    from siliconlab.tasks.chat import RetrievalChat
    from siliconlab.tasks.pipeline import Pipeline

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


# -- text in ---------------------------------------------------------------------------------------------------


def check_texts(request: Request) -> list[str]:
    """The request's texts, decoded and checked (empty, blank, invalid UTF-8 -> BadRequest naming the item)."""
    raw = request.get("text")
    if raw is None:
        raise BadRequest("missing input 'text'")
    flat = raw.reshape(-1)
    if flat.size == 0:
        raise BadRequest("input 'text' holds no text")
    texts = []
    for index, value in enumerate(flat):
        try:
            texts.append(check_text(value, "the text" if flat.size == 1 else f"text {index}"))
        except SiliconlabError as exc:
            raise BadRequest(str(exc)) from None
    return texts


_WORD = re.compile(r"\S+")


class Clipper:
    """Cuts very long texts before tokenizing, with the truncation flag and token count per text.

    Tokenizing a 1 MB text takes long and the model sees only its first `max_length` tokens anyway. Every
    whitespace-separated word yields at least one token, so the text cut after its first `max_length` words has
    the same first `max_length` tokens; the cut is kept only when the cut text still overflows (else the full
    text is used), which keeps the answer exact.
    """

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.cut_chars = max_length * 16

    def __call__(self, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        clipped = [self._cut(text) for text in texts]
        counts = [len(ids) for ids in self.tokenizer(clipped, add_special_tokens=True)["input_ids"]]
        for index, (text, cut, count) in enumerate(zip(texts, clipped, counts)):
            if cut is not text and count <= self.max_length:  # a cut that does not overflow: use the full text
                clipped[index] = text
                counts[index] = len(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        truncated = np.array([[count > self.max_length] for count in counts], dtype=bool)
        tokens = np.array([[min(count, self.max_length)] for count in counts], dtype=np.int64)
        return clipped, tokens, truncated

    def _cut(self, text: str) -> str:
        if len(text) <= self.cut_chars:
            return text
        end = None
        for count, match in enumerate(_WORD.finditer(text), start=1):
            if count >= self.max_length:
                end = match.end()
                break
        return text if end is None else text[:end]


# -- the models ------------------------------------------------------------------------------------------------

TEXT_IN = [Spec("text", bytes, (1,))]
NOTICE_OUT = [Spec("tokens", np.int64, (1,)), Spec("truncated", np.bool_, (1,))]


def embedding_binding(name: str, pipeline: Any) -> Binding:
    clip = Clipper(pipeline.loaded.tokenizer, pipeline.loaded.max_length)

    def run(texts: list[str]) -> Rows:
        clipped, tokens, truncated = clip(texts)
        return {"embedding": pipeline.encode(clipped), "tokens": tokens, "truncated": truncated}

    width = _embedding_width(pipeline)
    outputs = [Spec("embedding", np.float32, (width,)), *NOTICE_OUT]
    return Binding(name, TEXT_IN, outputs, batched(name, check_texts, run), {"max_length": str(clip.max_length)},
                   pipeline.model, pipeline.unit, "embedding")  # fmt: skip


def classifier_binding(name: str, pipeline: Any) -> Binding:
    clip = Clipper(pipeline.loaded.tokenizer, pipeline.loaded.max_length)
    labels = list(pipeline.classify(["label probe"])[0]["scores"])  # the pipeline's names, LABEL_i when unnamed

    def run(texts: list[str]) -> Rows:
        clipped, tokens, truncated = clip(texts)
        answers = pipeline.classify(clipped)
        return {
            "label": np.array([[a["label"].encode()] for a in answers], dtype=object),
            "score": np.array([[a["score"]] for a in answers], dtype=np.float32),
            "scores": np.array([[a["scores"][label] for label in labels] for a in answers], dtype=np.float32),
            "tokens": tokens,
            "truncated": truncated,
        }

    outputs = [Spec("label", bytes, (1,)), Spec("score", np.float32, (1,)), Spec("scores", np.float32, (len(labels),)),
               *NOTICE_OUT]  # fmt: skip
    return Binding(name, TEXT_IN, outputs, batched(name, check_texts, run), {"labels": ",".join(labels)},
                   pipeline.model, pipeline.unit, "classification")  # fmt: skip


def chat_binding(name: str, bot: Any) -> Binding:
    clip = Clipper(bot.loaded.tokenizer, bot.loaded.max_length)

    def run(texts: list[str]) -> Rows:
        clipped, tokens, truncated = clip(texts)
        answers = [bot.reply(text) for text in clipped]
        return {
            "reply": np.array([[a["reply"].encode()] for a in answers], dtype=object),
            "score": np.array([[a["score"]] for a in answers], dtype=np.float32),
            "matched": np.array([[a["matched"].encode()] for a in answers], dtype=object),
            "tokens": tokens,
            "truncated": truncated,
        }

    outputs = [Spec("reply", bytes, (1,)), Spec("score", np.float32, (1,)), Spec("matched", bytes, (1,)), *NOTICE_OUT]
    return Binding(name, TEXT_IN, outputs, batched(name, check_texts, run), {}, bot.model, bot.unit, "chat")


def ids_binding(name: str, pipeline: Any) -> Binding:
    """`<name>-ids`: token ids and attention mask in (INT64 [-1] each, one row per text), embeddings out."""
    loaded = pipeline.loaded
    vocab = len(loaded.tokenizer)

    def check(request: Request) -> list[tuple[np.ndarray, np.ndarray]]:
        return check_ids(request, vocab, loaded.max_length)

    def run(rows: list[tuple[np.ndarray, np.ndarray]]) -> Rows:
        longest = max(ids.shape[0] for ids, _ in rows)
        ids = np.zeros((len(rows), longest), dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        for index, (row_ids, row_mask) in enumerate(rows):
            ids[index, : row_ids.shape[0]] = row_ids
            mask[index, : row_mask.shape[0]] = row_mask
        with pipeline._lock:  # the pipeline's own runner lock: minilm and minilm-ids share a runner
            out = loaded.runner.run(ids, mask)["sentence_embedding"]
        tokens = mask.sum(axis=1, keepdims=True).astype(np.int64)
        return {"embedding": np.asarray(out, dtype=np.float32), "tokens": tokens}

    inputs = [Spec("input_ids", np.int64, (-1,)), Spec("attention_mask", np.int64, (-1,))]
    outputs = [Spec("embedding", np.float32, (_embedding_width(pipeline),)), Spec("tokens", np.int64, (1,))]
    params = {"max_length": str(loaded.max_length), "vocab_size": str(vocab)}
    return Binding(name, inputs, outputs, batched(name, check, run), params, pipeline.model, pipeline.unit, "embedding")


def check_ids(request: Request, vocab: int, max_length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows of (ids, mask): same shapes, ids within the vocabulary, mask of 0/1 with a 1 in every row."""
    ids, mask = request.get("input_ids"), request.get("attention_mask")
    if ids is None or mask is None:
        raise BadRequest("the request needs both inputs 'input_ids' and 'attention_mask'")
    if ids.shape != mask.shape:
        raise BadRequest(f"'input_ids' {list(ids.shape)} and 'attention_mask' {list(mask.shape)} differ in shape")
    if ids.shape[-1] < 1 or ids.shape[-1] > max_length:
        raise BadRequest(f"rows must hold 1 to {max_length} token ids (the model's maximum), got {ids.shape[-1]}")
    if ids.min() < 0 or ids.max() >= vocab:
        raise BadRequest(f"token ids must lie in 0..{vocab - 1} (the tokenizer's vocabulary)")
    if not np.isin(mask, (0, 1)).all():
        raise BadRequest("'attention_mask' may hold only 0 and 1")
    if (mask.sum(axis=-1) == 0).any():
        raise BadRequest("every row of 'attention_mask' needs at least one 1")
    return list(zip(ids, mask))


def _embedding_width(pipeline: Any) -> int:
    """Measured by one call (it also warms the unit up before the first request)."""
    return int(pipeline.encode(["width probe"]).shape[1])


def bindings_for(name: str, pipeline: Any) -> list[Binding]:
    """The Triton models one pipeline serves: embeddings (+ the token-ids variant), classes, or chat replies."""
    if pipeline.task == "embedding":
        return [embedding_binding(name, pipeline), ids_binding(f"{name}-ids", pipeline)]
    if pipeline.task == "classification":
        return [classifier_binding(name, pipeline)]
    if pipeline.task == "chat" and "stream" in getattr(pipeline, "methods", ()):
        from siliconlab.serve.generative import stream_binding

        return [stream_binding(name, pipeline)]
    if pipeline.task == "chat":
        return [chat_binding(name, pipeline)]
    raise SiliconlabError(f"model '{name}' is a {pipeline.task} model, which serve does not know how to serve")


def load_bindings(models: tuple[str, ...], unit: str, cache: Any = None, threads: int | None = None,
                  on_loaded: Callable[[str, Any], None] | None = None) -> list[Binding]:  # fmt: skip
    """Load each model's pipeline once (chat reuses a served minilm's) and bind it under its served name."""
    from siliconlab.serve.config import SERVED, served_name
    from siliconlab.tasks import load

    pipelines: dict[str, Any] = {}
    bindings: list[Binding] = []
    for model in sorted(models, key=lambda m: served_name(m) == "chat"):  # chat last, to reuse minilm
        name = served_name(model)
        pipeline: Pipeline | RetrievalChat
        if name == "chat" and "minilm" in pipelines:
            from siliconlab.tasks.chat import RetrievalChat

            pipeline = RetrievalChat(pipelines["minilm"])
        else:
            pipeline = load(SERVED.get(name, model), unit=unit, cache=cache, threads=threads)
        pipelines[name] = pipeline
        if on_loaded is not None:
            on_loaded(name, pipeline)
        bindings += bindings_for(name, pipeline)
    return bindings
