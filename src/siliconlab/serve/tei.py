"""Hugging Face text-embeddings-inference (TEI) routes on the OpenAI front: `POST /embed`, `POST /predict`,
`POST /tokenize`, `GET /info`, in TEI's request and response shapes.

Many clients (TEI's own, LangChain's and LlamaIndex's TEI integrations) call these rather than OpenAI's API. Like
the OpenAI routes they hold no model: texts go to the same Triton models (serve/openai_backend.py's `run_texts`), so
batching, the queue and the request limits are shared. A TEI server serves one model; this front may serve
several, so `/embed` uses the first embedding model served and `/predict` the first classifier (`tei_models`).
Errors come in TEI's shape, `{"error": ..., "error_type": ...}`, with TEI's status codes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

import numpy as np
from fastapi import Request  # at module level: FastAPI resolves the endpoint's annotations from these globals
from pydantic import BaseModel, StrictBool, StrictInt, StrictStr, ValidationError

from siliconlab.errors import UsageError
from siliconlab.serve.openai_backend import ApiError, AsciiJSON, Backend, run_texts, shorten
from siliconlab.text import check_text

#: The paths this module answers: the guard (serve/front_guard.py) asks for the key on them and answers in TEI's shape.
TEI_PATHS = frozenset({"/embed", "/predict", "/tokenize", "/info"})

#: TEI's error types and the status it answers each with (its router's `From<&ErrorType> for StatusCode`).
STATUS = {"Unhealthy": 503, "Backend": 424, "Overloaded": 429, "Validation": 413, "Tokenizer": 422, "Empty": 400}


class TeiError(Exception):
    """A TEI-shaped error: `{"error": message, "error_type": kind}` answered with `status`."""

    def __init__(self, status: int, message: str, kind: str = "Validation"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.kind}


@dataclass(frozen=True)
class TeiModel:
    """One served model as TEI's routes need it: its Triton name, tokenizer, window and (classifiers) labels."""

    name: str
    model: str
    unit: str
    max_length: int
    tokenizer: Any
    width: int = 0
    labels: tuple[str, ...] = ()


def tei_models(bindings: list[Any]) -> tuple[TeiModel | None, TeiModel | None]:
    """The embedding model `/embed` uses and the classifier `/predict` uses: the first of each served, if any."""
    embedder = classifier = None
    for b in bindings:
        if b.decoupled or getattr(b, "tokenizer", None) is None:
            continue
        common = {"name": b.name, "model": b.model, "unit": b.unit, "tokenizer": b.tokenizer,
                  "max_length": int(b.parameters.get("max_length", 0))}  # fmt: skip
        if embedder is None and b.openai_embeddings:
            embedder = TeiModel(**common, width=b.outputs[0].shape[0])
        elif classifier is None and "labels" in b.parameters and any(s.name == "scores" for s in b.outputs):
            classifier = TeiModel(**common, labels=tuple(b.parameters["labels"].split(",")))
    return embedder, classifier


# -- requests (TEI's router/src/http/types.rs) -----------------------------------------------------------------

Texts = StrictStr | list[StrictStr]


class EmbedRequest(BaseModel):
    inputs: Texts
    truncate: StrictBool | None = None
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    prompt_name: StrictStr | None = None
    normalize: StrictBool = True
    dimensions: StrictInt | None = None


class PredictRequest(BaseModel):
    #: a text, a pair [a, b], or a batch [[a], [b], ...] (TEI's PredictInput)
    inputs: StrictStr | list[StrictStr] | list[list[StrictStr]]
    truncate: StrictBool | None = None
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    raw_scores: StrictBool = False


class TokenizeRequest(BaseModel):
    inputs: Texts
    add_special_tokens: StrictBool = True
    prompt_name: StrictStr | None = None


# -- the work --------------------------------------------------------------------------------------------------


async def embed(backend: Backend, model: TeiModel, request: EmbedRequest, left: Any = None) -> list[list[float]]:
    """TEI's `/embed`: one vector per input, always a list of lists; `dimensions` as OpenAI's (first N, renormed)."""
    if not request.normalize:
        raise TeiError(400, f"'{model.name}' answers L2-normalised vectors only; 'normalize': false is not served")
    if request.dimensions is not None and not 1 <= request.dimensions <= model.width:
        raise TeiError(400, f"'dimensions' must be 1 to {model.width} (the size of '{model.name}'), "
                       f"got {request.dimensions}")  # fmt: skip
    _no_prompts(request.prompt_name)
    texts = _texts(backend, request.inputs)
    out = await _run(backend, model, texts, request.truncate, request.truncation_direction, left, ("embedding",))
    return shorten(out["embedding"], request.dimensions).tolist()


async def predict(backend: Backend, model: TeiModel, request: PredictRequest, left: Any = None) -> list[Any]:
    """TEI's `/predict`: every label with its probability, highest first; one list per input of a batch."""
    if request.raw_scores:
        raise TeiError(400, f"'{model.name}' answers probabilities only; 'raw_scores': true (logits) is not served")
    inputs = request.inputs
    single = isinstance(inputs, str) or (len(inputs) == 1 and isinstance(inputs[0], str))
    if isinstance(inputs, list) and len(inputs) == 2 and all(isinstance(i, str) for i in inputs):
        raise TeiError(400, f"a list of two texts is a pair of sequences for TEI's /predict, and '{model.name}' "
                       "classifies one text at a time; send a batch as [[\"first\"], [\"second\"]]")  # fmt: skip
    if isinstance(inputs, list) and len(inputs) > 2 and all(isinstance(i, str) for i in inputs):
        raise TeiError(422, "'inputs' must be a text, a pair [text, text] or a batch [[text], [text], ...]")
    if isinstance(inputs, str):
        texts = [inputs]
    elif single:
        texts = [str(inputs[0])]
    else:
        if any(not isinstance(i, list) or len(i) != 1 for i in inputs):
            raise TeiError(400, f"'{model.name}' classifies one text per input: every batch item is [text]")
        texts = [i[0] for i in inputs if isinstance(i, list)]
    texts = _texts(backend, texts)
    out = await _run(backend, model, texts, request.truncate, request.truncation_direction, left, ("scores",))
    answers = []
    for row in out["scores"]:
        order = np.argsort(-row, kind="stable")
        answers.append([{"score": float(row[i]), "label": model.labels[i]} for i in order])
    return answers[0] if single else answers


def tokenize(backend: Backend, model: TeiModel, request: TokenizeRequest) -> list[list[dict[str, Any]]]:
    """TEI's `/tokenize`: each input's tokens with their id, text, whether special, and UTF-8 byte offsets
    (`start`/`stop` are null for special tokens, as TEI answers); no truncation, as TEI."""
    _no_prompts(request.prompt_name)
    texts = _texts(backend, request.inputs)
    encoded = model.tokenizer(texts, add_special_tokens=request.add_special_tokens, truncation=False,
                              return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)  # fmt: skip
    answers = []
    for index, text in enumerate(texts):
        # UTF-8 byte offset of every character position, once per text (slicing and encoding per token made a
        # 2 MB text take 162 s: quadratic; hostile re-test)
        byte_at = list(accumulate((len(char.encode()) for char in text), initial=0))
        ids, offsets = encoded["input_ids"][index], encoded["offset_mapping"][index]
        special, pieces = encoded["special_tokens_mask"][index], encoded.tokens(index)
        tokens = []
        for token_id, (start, stop), is_special, piece in zip(ids, offsets, special, pieces):
            if is_special:
                tokens.append({"id": int(token_id), "text": piece, "special": True, "start": None, "stop": None})
                continue
            first, last = byte_at[start], byte_at[stop]
            tokens.append({"id": int(token_id), "text": text[start:stop], "special": False, "start": first,
                           "stop": last})  # fmt: skip
        answers.append(tokens)
    return answers


def info(backend: Backend, model: TeiModel) -> dict[str, Any]:
    """TEI's `/info` for the model `/embed` (else `/predict`) uses; `version` is siliconlab's."""
    from siliconlab.version import __version__

    if model.labels:
        ids = dict(enumerate(model.labels))
        kind: dict[str, Any] = {"classifier": {"id2label": {str(i): label for i, label in ids.items()},
                                               "label2id": {label: i for i, label in ids.items()}}}  # fmt: skip
    else:
        kind = {"embedding": {"pooling": "mean"}}  # every embedding model here mean-pools (models/base.py)
    dtype = next((d for d in ("fp32", "fp16", "bf16", "int8", "int4") if d in model.unit), "unknown")
    max_batch = backend.max_batch
    return {"model_id": model.name, "model_sha": None, "model_dtype": dtype.replace("fp", "float"),
            "model_type": kind, "max_concurrent_requests": backend.options.max_queue or 0,
            "max_input_length": model.max_length, "max_batch_tokens": max_batch * model.max_length,
            "max_batch_requests": max_batch, "max_client_batch_size": backend.options.max_texts,
            "auto_truncate": False, "tokenization_workers": 1, "version": __version__, "sha": None,
            "docker_label": None, "siliconlab": {"model": model.model, "unit": model.unit}}  # fmt: skip


def _no_prompts(prompt_name: str | None) -> None:
    if prompt_name is not None:
        raise TeiError(400, f"'prompt_name' is '{prompt_name}', but the served models have no prompts")


def _texts(backend: Backend, inputs: str | list[str]) -> list[str]:
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    if not texts:
        raise TeiError(400, "`inputs` cannot be empty", "Empty")
    if len(texts) > backend.options.max_texts:
        raise TeiError(413, f"batch size {len(texts)} > maximum allowed batch size {backend.options.max_texts} "
                       "(--max-texts)")  # fmt: skip
    for index, text in enumerate(texts):
        try:
            check_text(text, "inputs" if len(texts) == 1 else f"inputs[{index}]")
        except UsageError as exc:
            raise TeiError(400, str(exc), "Empty" if not text.strip() else "Validation") from None
    return texts


async def _run(backend: Backend, model: TeiModel, texts: list[str], truncate: bool | None, direction: str,
               left: Any, outputs: tuple[str, ...]) -> dict[str, np.ndarray]:  # fmt: skip
    """The texts through the model; a text longer than the model's window is a 413 unless `truncate` (TEI's
    default is to refuse), and only the right end can be cut (the models keep the first tokens)."""
    out, _ = await run_texts(backend, model.name, texts, left, (*outputs, "tokens", "truncated"))
    cut = [i for i, flag in enumerate(out["truncated"].reshape(-1)) if flag]
    if cut and not truncate:
        raise TeiError(413, f"`inputs` must have less than {model.max_length} tokens: input {cut[0]} is longer "
                       "(send 'truncate': true to cut it)")  # fmt: skip
    if cut and direction.lower() == "left":
        raise TeiError(400, "'truncation_direction': 'Left' is not served: the models keep a text's first tokens")
    return out


# -- routes ----------------------------------------------------------------------------------------------------


def tei_router(backend: Backend, embedder: TeiModel | None, classifier: TeiModel | None) -> Any:
    """TEI's routes over the served models; a route whose kind of model is not served answers 400."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/embed", response_model=None)
    async def embed_route(http: Request) -> Any:
        async def work() -> Any:
            return await embed(backend, _needs(embedder, "embedding"), await _parse(http, EmbedRequest),
                               http.is_disconnected)  # fmt: skip

        return await _answer(http, work())

    @router.post("/predict", response_model=None)
    async def predict_route(http: Request) -> Any:
        async def work() -> Any:
            return await predict(backend, _needs(classifier, "classifier"), await _parse(http, PredictRequest),
                                 http.is_disconnected)  # fmt: skip

        return await _answer(http, work())

    @router.post("/tokenize", response_model=None)
    async def tokenize_route(http: Request) -> Any:
        async def work() -> Any:
            request = await _parse(http, TokenizeRequest)
            return await asyncio.to_thread(tokenize, backend, _needs(embedder or classifier, "text"), request)

        return await _answer(http, work())

    @router.get("/info", response_model=None)
    async def info_route(http: Request) -> Any:
        async def work() -> Any:
            return info(backend, _needs(embedder or classifier, "text"))

        return await _answer(http, work())

    return router


def _needs(model: TeiModel | None, kind: str) -> TeiModel:
    if model is None:
        raise TeiError(400, f"no {kind} model is served here (siliconlab serve MODEL ... names them)")
    return model


async def _parse(http: Request, shape: type[Any]) -> Any:
    """The body as `shape`; not JSON is a 400 and the wrong shape a 422, as TEI's router (axum) answers."""
    raw = await http.body()
    try:
        return shape.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            raise TeiError(400, f"the body is not valid JSON ({first.get('ctx', {}).get('error', '')})") from None
        where = next((str(p) for p in first.get("loc", ())), "body")
        raise TeiError(422, f"'{where}': {first.get('msg', 'invalid value')}", "Validation") from None
    except RecursionError:
        raise TeiError(400, "the body nests too deeply to be read") from None


async def _answer(http: Request, work: Any) -> Any:
    """`work`'s answer as JSON, or its error in TEI's shape: OpenAI-shaped errors of the shared code are mapped
    (Triton's full queue is TEI's 429 Overloaded, a failure in the model its 424 Backend)."""
    from siliconlab.log import log
    from siliconlab.serve.openai_chat import unless_disconnected

    try:
        return AsciiJSON(await unless_disconnected(http, work), status_code=200)
    except TeiError as exc:
        error = exc
    except ApiError as exc:
        if exc.status in (429, 503):
            error = TeiError(429, exc.message, "Overloaded")
        elif exc.status >= 500 or exc.status == 499:
            error = TeiError(424 if exc.status != 499 else 499, exc.message, "Backend")
        else:
            error = TeiError(exc.status, exc.message, "Validation")
    except Exception as exc:  # a bug of ours: one JSON line, never a traceback
        log.error("a TEI route failed on a request", exc_info=exc)
        error = TeiError(500, "the server failed on this request; its log says why", "Backend")
    return AsciiJSON(error.body(), status_code=error.status)
