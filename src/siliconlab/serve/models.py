"""The batched Triton models over the task pipelines of `siliconlab.load`: one per served model, built from the
task's answer columns (tasks/task.py), so serve names no task.

A request's texts are checked and tokenized once (`Pipeline.prepare`); the good requests' token rows run as one
batch (`Pipeline.run_prepared` through the task's `serve_answer`) and are split back per request, with each
text's token count and truncation flag. Errors per request: serve/binding.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError
from siliconlab.serve.binding import (
    CODE_KEY,
    ERROR_KEY,
    NO_KEY,
    BadRequest,
    Binding,
    Request,
    Response,
    Rows,
    Spec,
    batched,
    error_response,
    key_given,
)
from siliconlab.serve.generative import stream_binding
from siliconlab.tasks.pipeline import Prepared
from siliconlab.tasks.registry import get_task, task_of
from siliconlab.tasks.task import Column, Task

__all__ = [
    "CODE_KEY", "ERROR_KEY", "NO_KEY", "BadRequest", "Binding", "Request", "Response", "Rows", "Spec", "batched",
    "bindings_for", "embedding_binding", "error_response", "key_given", "load_bindings", "text_binding",
]  # fmt: skip


# -- text in ---------------------------------------------------------------------------------------------------


def request_texts(request: Request) -> list[Any]:
    """The request's text elements as sent (the pipeline's `prepare` checks each: empty, blank, invalid UTF-8)."""
    raw = request.get("text")
    if raw is None:
        raise BadRequest("missing input 'text'")
    flat = raw.reshape(-1)
    if flat.size == 0:
        raise BadRequest("input 'text' holds no text")
    return list(flat)


#: One text of a request, checked and tokenized: (token ids cut to the window, its token count before the cut).
TokenRow = tuple[list[int], int]

TEXT_IN = [Spec("text", bytes, (1,))]
NOTICE_OUT = [Spec("tokens", np.int64, (1,)), Spec("truncated", np.bool_, (1,))]
_SPECS: dict[str, Callable[[Column], Spec]] = {
    "str": lambda c: Spec(c.name, bytes, (1,)),
    "float": lambda c: Spec(c.name, np.float32, (1,)),
    "vector": lambda c: Spec(c.name, np.float32, (c.width or 0,)),
    "map": lambda c: Spec(c.name, np.float32, (len(c.keys),)),
}
_ARRAYS: dict[str, Callable[[Column, list[Any]], np.ndarray]] = {
    "str": lambda c, v: np.array([[x.encode()] for x in v], dtype=object),
    "float": lambda c, v: np.array([[x] for x in v], dtype=np.float32),
    "vector": lambda c, v: np.asarray(v, dtype=np.float32).reshape(len(v), -1),
    "map": lambda c, v: np.array([[x[k] for k in c.keys] for x in v], dtype=np.float32).reshape(len(v), -1),
}


def text_binding(name: str, pipeline: Any, task: Task) -> Binding:
    """`<name>`: texts in, the task's answer columns out, plus each text's token count and truncation flag."""
    loaded = pipeline.loaded
    probe = pipeline.prepare(["width probe"])  # the answer's width; it also warms the unit up before any request
    width = pipeline.run_prepared(probe, task.output).shape[1] if task.output is not None else 0
    columns = task.columns(list(loaded.labels), width)

    def check(request: Request) -> list[TokenRow]:
        prepared = pipeline.prepare(request_texts(request))
        if prepared.errors:
            raise BadRequest(prepared.errors[min(prepared.errors)])
        return list(zip(prepared.rows, prepared.tokens))

    def run(rows: list[TokenRow]) -> Rows:
        prepared = Prepared([ids for ids, _ in rows], [count for _, count in rows], list(range(len(rows))), {},
                            loaded.max_length)  # fmt: skip
        answers = task.serve_answer(pipeline, prepared)
        out = {c.name: _ARRAYS[c.kind](c, answers[c.name]) for c in columns}
        out["tokens"] = np.array([[min(count, loaded.max_length)] for count in prepared.tokens], dtype=np.int64)
        out["truncated"] = np.array([[flag] for flag in prepared.truncated], dtype=bool)
        return out

    outputs = [_SPECS[c.kind](c) for c in columns] + NOTICE_OUT
    params = {"max_length": str(loaded.max_length)}
    for column in columns:
        if column.kind == "map":  # the class names, in the order of the `scores` vector (client.py reads them)
            params["labels"] = ",".join(column.keys)
    return Binding(name, TEXT_IN, outputs, batched(name, check, run), params, pipeline.model, pipeline.unit,
                   task.name, openai_embeddings=task.openai_embeddings, tokenizer=loaded.tokenizer)  # fmt: skip


def embedding_binding(name: str, pipeline: Any) -> Binding:
    """An embedding pipeline's text model (also for wrappers of one that are no registered pipeline)."""
    return text_binding(name, pipeline, get_task("embedding"))


def ids_binding(name: str, pipeline: Any, task: Task | None = None) -> Binding:
    """`<name>-ids`: token ids and attention mask in (INT64 [-1] each, one row per text), the task's vector out
    (embeddings): for clients that tokenize themselves."""
    task = task or get_task("embedding")
    loaded = pipeline.loaded
    output = task.output or ""
    width = pipeline.run_prepared(pipeline.prepare(["width probe"]), output).shape[1]
    column = next(c.name for c in task.columns(list(loaded.labels), width) if c.kind == "vector")
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
        out = pipeline.run_padded(ids, mask, output)  # under the pipeline's runner lock: minilm and minilm-ids share it
        tokens = mask.sum(axis=1, keepdims=True).astype(np.int64)
        return {column: out, "tokens": tokens}

    inputs = [Spec("input_ids", np.int64, (-1,)), Spec("attention_mask", np.int64, (-1,))]
    outputs = [Spec(column, np.float32, (width,)), Spec("tokens", np.int64, (1,))]
    params = {"max_length": str(loaded.max_length), "vocab_size": str(vocab)}
    return Binding(name, inputs, outputs, batched(name, check, run), params, pipeline.model, pipeline.unit, task.name)


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


def bindings_for(name: str, pipeline: Any) -> list[Binding]:
    """The Triton models one pipeline serves, as its task says: a streaming model, or a text model (plus the
    token-ids variant where the task has one)."""
    task = task_of(pipeline)
    if task.streaming:
        return [stream_binding(name, pipeline)]
    if task.output is None and type(task).serve_answer is Task.serve_answer:
        raise SiliconlabError(f"model '{name}' is a {task.name} model, which serve does not know how to serve")
    bindings = [text_binding(name, pipeline, task)]
    if task.token_ids_model:
        bindings.append(ids_binding(f"{name}-ids", pipeline, task))
    return bindings


def load_bindings(models: tuple[str, ...], unit: str, cache: Any = None, threads: int | None = None,
                  on_loaded: Callable[[str, Any], None] | None = None) -> list[Binding]:  # fmt: skip
    """Load each model's pipeline once and bind it under its served name; a task standing on another served
    model (chat-retrieval on minilm) wraps that model's pipeline instead of loading it again."""
    from siliconlab.serve.config import SERVED, served_name
    from siliconlab.tasks import load
    from siliconlab.tasks.registry import task_claiming

    claimed = {model: task_claiming(SERVED.get(served_name(model), model)) for model in models}
    pipelines: dict[str, Any] = {}
    bindings: list[Binding] = []
    for model in sorted(models, key=lambda m: getattr(claimed[m], "stands_on", None) is not None):  # those last
        name = served_name(model)
        task = claimed[model]
        if task is not None and task.stands_on in pipelines:
            pipeline = task.over(pipelines[task.stands_on])
        else:
            pipeline = load(SERVED.get(name, model), unit=unit, cache=cache, threads=threads)
        pipelines[name] = pipeline
        if on_loaded is not None:
            on_loaded(name, pipeline)
        bindings += bindings_for(name, pipeline)
    return bindings
