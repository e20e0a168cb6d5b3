"""Task pipelines: text in, answers out, on one compute unit's parity-gated artifact.

A pipeline tokenizes (batched, sorted by length so padding stays small, long texts truncated with a
notice), runs the unit's runner and post-processes. A bad item in a list (empty, undecodable) is reported
for that item while the good ones are answered. Calls are serialised by a lock, so a server may call one
pipeline from many threads.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.text import check_text, padded, tokenize

#: Texts per runner call: large enough to amortise per-call overhead, small enough to bound padding.
BATCH = 32
#: Texts tokenized in one call before being cut into runner calls (bounds the padded id arrays of a long list).
WINDOW = 1024


class BadInputWarning(UserWarning):
    """Some items of a list could not be answered; the others were."""


@dataclass
class Loaded:
    """What a pipeline stands on: the model, the unit and its artifact, already loaded."""

    model: str
    task: str
    unit: str
    runner: Any
    tokenizer: Any
    max_length: int
    artifact_dir: Path | None
    labels: list[str] = field(default_factory=list)
    why_unit: str = ""
    truncation: str = "head"  # how long texts are cut (text.encode); a task head says which it was trained on


@dataclass
class Prepared:
    """Texts checked and tokenized once (what TEI and infinity do per request): every front (API, serve, batch)
    prepares a request's texts once, then runs the token rows; nothing tokenizes or checks them again."""

    rows: list[list[int]]  # token ids per good text, cut to the model's window (special tokens kept)
    tokens: list[int]  # each good text's token count before the cut
    good: list[int]  # the good texts' positions in what was given
    errors: dict[int, str] = field(default_factory=dict)  # the bad texts' positions and why
    max_length: int = 0

    @property
    def truncated(self) -> list[bool]:
        return [count > self.max_length for count in self.tokens]


#: A text longer than this many characters per window token is cut to its first `max_length` words before
#: tokenizing (a 1 MB text takes long to tokenize and the model sees only its head).
CLIP_CHARS_PER_TOKEN = 16


class Pipeline:
    """The methods every task model has; a method the task lacks says which one to call instead."""

    task = "?"
    methods: tuple[str, ...] = ()

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self._lock = threading.Lock()
        self.last_ms = 0.0

    @property
    def model(self) -> str:
        return self.loaded.model

    @property
    def unit(self) -> str:
        return self.loaded.unit

    def _wrong_task(self, method: str) -> SiliconlabError:
        offers = ", ".join(f"{m}()" for m in self.methods)
        return UsageError(f"model '{self.model}' is a {self.task} model: it has {offers}, not {method}()")

    def encode(self, texts: Any) -> np.ndarray:
        raise self._wrong_task("encode")

    def classify(self, texts: Any) -> list[dict[str, Any]]:
        raise self._wrong_task("classify")

    def reply(self, text: str) -> dict[str, Any]:
        raise self._wrong_task("reply")

    def run_texts(
        self, texts: list[str], output: str, max_rows: int | None = None, progress: bool = False
    ) -> tuple[np.ndarray | None, dict[int, str]]:
        """One output row per text (NaN rows for bad items), and {index: reason} for the bad ones.

        `max_rows` caps the texts per runner call (sentence-transformers' batch_size); `progress` shows a bar."""
        rows: dict[int, np.ndarray] = {}
        good, errors = self._answer(texts, max_rows, progress, lambda index, out, _: rows.update(
            (i, np.asarray(row, dtype=np.float32)) for i, row in zip(index, out[output])))  # fmt: skip
        if not good:
            return None, errors
        width = next(iter(rows.values())).shape[-1]
        result = np.full((len(texts), width), np.nan, dtype=np.float32)
        for index, row in rows.items():
            result[index] = row
        return result, errors

    def run_tokens(
        self, texts: list[str], max_rows: int | None = None, progress: bool = False
    ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """{index: token states of that text's valid tokens [tokens, hidden]}, and {index: reason} for bad ones."""
        rows: dict[int, np.ndarray] = {}

        def keep(index: list[int], out: dict[str, Any], mask: np.ndarray) -> None:
            states = np.asarray(out["token_states"], dtype=np.float32)
            rows.update((i, states[k][mask[k].astype(bool)]) for k, i in enumerate(index))

        _, errors = self._answer(texts, max_rows, progress, keep)
        return rows, errors

    def prepare(self, texts: list[Any], name: str | None = None, start: int = 0) -> Prepared:
        """Check and tokenize `texts` once: bad items (not a str, empty, undecodable) get a reason instead.

        Items are named "the text" / "text i" (i from `start`: texts[0] is item `start` of a longer list), or
        all `name` when given (batch: "field 'text'")."""
        good, errors, checked = [], {}, []
        single = len(texts) == 1 and start == 0
        for index, text in enumerate(texts):
            try:
                checked.append(check_text(text, name or ("the text" if single else f"text {start + index}")))
                good.append(index)
            except UsageError as exc:
                errors[index] = str(exc)
        loaded = self.loaded
        if not checked:
            return Prepared([], [], good, errors, loaded.max_length)
        clipped = [_clip(text, loaded.max_length) for text in checked] if loaded.truncation == "head" else checked
        rows, tokens = tokenize(loaded.tokenizer, clipped, loaded.max_length, loaded.truncation)
        for index, (text, cut) in enumerate(zip(checked, clipped)):
            if cut is not text and tokens[index] <= loaded.max_length:  # the cut did not overflow: the whole text
                (rows[index],), (tokens[index],) = tokenize(loaded.tokenizer, [text], loaded.max_length)
        return Prepared(rows, tokens, good, errors, loaded.max_length)

    def run_prepared(
        self, prepared: Prepared, output: str, groups: list[list[int]] | None = None, max_rows: int | None = None
    ) -> np.ndarray:
        """The runner's `output`, one float32 row per prepared row (in `prepared.rows` order), in runner calls
        of `groups` (row positions; by default the pipeline's own length-sorted plan)."""
        values: np.ndarray | None = None

        def keep(index: list[int], out: dict[str, Any], _: np.ndarray) -> None:
            nonlocal values
            rows = np.asarray(out[output], dtype=np.float32)
            if values is None:
                values = np.empty((len(prepared.rows), rows.shape[1]), dtype=np.float32)
            values[index] = rows

        self._run_rows(prepared.rows, keep, groups, max_rows)
        return values if values is not None else np.empty((0, 0), dtype=np.float32)

    def run_padded(self, ids: np.ndarray, mask: np.ndarray, output: str) -> np.ndarray:
        """The runner's `output` for token ids the caller tokenized and padded (serve's token-ids model), under
        the pipeline's runner lock."""
        with self._lock:
            out = self.loaded.runner.run(ids, mask)
        return np.asarray(out[output], dtype=np.float32)

    def _run_rows(
        self, rows: list[list[int]], take: Any, groups: list[list[int]] | None = None, max_rows: int | None = None,
        bar: Any = None,
    ) -> None:  # fmt: skip
        """Pad each group of token rows to its longest and run it; `take(positions, outputs, mask)` per call."""
        if groups is None:
            groups = self._groups(np.array([len(row) for row in rows]), max_rows)
        run_many = getattr(self.loaded.runner, "run_many", None)
        if run_many is not None and len(groups) > 1:  # a runner that answers independent calls side by side
            inputs = [padded(self.loaded.tokenizer, [rows[i] for i in group]) for group in groups]
            with self._lock:
                outs = run_many(inputs)
            for group, (_, mask), out in zip(groups, inputs, outs):
                take(group, out, mask)
                if bar is not None:
                    bar.update(len(group))
            return
        for group in groups:
            ids, mask = padded(self.loaded.tokenizer, [rows[i] for i in group])
            with self._lock:
                out = self.loaded.runner.run(ids, mask)
            take(group, out, mask)
            if bar is not None:
                bar.update(len(group))

    def _answer(
        self, texts: list[Any], max_rows: int | None, progress: bool, take: Any
    ) -> tuple[list[int], dict[int, str]]:
        """Prepare the texts a window at a time and run them in length-sorted calls; `take(indices, outputs,
        mask)` per call, with indices into `texts`."""
        if not texts:
            return [], {}
        begin = time.perf_counter()
        good: list[int] = []
        errors: dict[int, str] = {}
        bar = None
        for start in range(0, len(texts), WINDOW):  # bounds the token rows held at once
            prepared = self.prepare(texts[start : start + WINDOW], start=start)
            if len(texts) == 1 and prepared.errors:
                raise UsageError(prepared.errors[0])
            window = [start + i for i in prepared.good]
            good += window
            errors.update({start + i: reason for i, reason in prepared.errors.items()})
            _warn_truncated(prepared, window, len(texts) == 1)
            if bar is None:
                bar = _progress(len(texts), progress)
            self._run_rows(prepared.rows, lambda group, out, mask, at=window: take([at[j] for j in group], out, mask),
                           max_rows=max_rows, bar=bar)  # fmt: skip
        if bar is not None:
            bar.close()
        self.last_ms = (time.perf_counter() - begin) * 1e3
        return good, errors

    def _groups(self, lengths: np.ndarray, max_rows: int | None = None) -> list[list[int]]:
        """Which rows (by token length) go into which runner call. A CPU runner names a padded-token budget per
        call: the rows are sorted by length and cut greedily within it (batch/bucketing.py), because on a CPU a
        long padded batch costs more per text than small ones (32 real texts here, median 24 tokens: one padded
        call took 2-2.6x as long as calls of <= 256 tokens on every CPU unit; docs/tasks.md). Other runners
        (GPUs) take up to BATCH rows per call, sorted by length. `max_rows` caps any call's rows."""
        budget = getattr(self.loaded.runner, "tokens_per_call", None)
        if budget is None:
            size = min(BATCH, max_rows or BATCH)
            order = sorted(range(len(lengths)), key=lambda i: (int(lengths[i]), i))
            return [order[start : start + size] for start in range(0, len(order), size)]
        from siliconlab.tasks.bucketing import plan_batches

        groups = plan_batches([int(n) for n in lengths], budget)
        if max_rows is None:
            return groups
        return [g[start : start + max_rows] for g in groups for start in range(0, len(g), max_rows)]


def as_list(texts: Any) -> tuple[list[Any], bool]:
    """(texts as a list, whether one text was given on its own).

    A list, a tuple or a one-dimensional array (numpy, a pandas Series) is a list of texts, answered in its
    order; anything else is refused rather than iterated: a dict used to be classified by its keys, a set
    answers in no order the caller can match, and a generator cannot be told from a mistake."""
    if isinstance(texts, (str, bytes)):
        return [texts], True
    if not isinstance(texts, (list, tuple)) and hasattr(texts, "tolist") and getattr(texts, "ndim", None) == 1:
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise UsageError(f"expected a text or a list of texts, got {type(texts).__name__}")
    if not texts:
        raise UsageError("no text given: pass at least one non-empty text")
    return list(texts), False


_WORD = re.compile(r"\S+")


def _clip(text: str, max_length: int) -> str:
    """A very long text cut after its first `max_length` words, else the text itself. Every word yields at least
    one token, so the cut text has the same first `max_length` tokens; prepare() keeps the cut only when it
    still overflows, which keeps the answer exact."""
    if len(text) <= max_length * CLIP_CHARS_PER_TOKEN:
        return text
    for count, match in enumerate(_WORD.finditer(text), start=1):
        if count >= max_length:
            return text[: match.end()]
    return text


def _warn_truncated(prepared: Prepared, positions: list[int], single: bool) -> None:
    for position, count in zip(positions, prepared.tokens):
        if count > prepared.max_length:
            log.warning("%s has %d tokens, more than the model's maximum of %d: truncated to %d",
                        "the text" if single else f"text {position}", count, prepared.max_length,
                        prepared.max_length)  # fmt: skip


def _progress(total: int, show: bool) -> Any:
    """A tqdm bar over texts on stderr when asked (sentence-transformers' show_progress_bar), else None."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Batches", unit="text", disable=False)


def warn_bad_items(errors: dict[int, str]) -> None:
    if errors:
        listed = "; ".join(errors[i] for i in sorted(errors)[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        warnings.warn(f"{len(errors)} text(s) not answered: {listed}{more}", BadInputWarning, stacklevel=3)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class ClassifierPipeline(Pipeline):
    task = "classification"
    methods = ("classify",)

    def classify(self, texts: Any) -> list[dict[str, Any]]:
        """[{label, score, scores}] per text; a bad item gets {label: None, error: reason} instead."""
        items, _ = as_list(texts)
        logits, errors = self.run_texts(items, "logits")
        labels = self.loaded.labels or [f"LABEL_{i}" for i in range(logits.shape[1] if logits is not None else 0)]
        answers: list[dict[str, Any]] = []
        for index in range(len(items)):
            if index in errors or logits is None:  # no logits at all: every text was refused
                answers.append({"label": None, "score": None, "scores": {}, "error": errors.get(index, "not run")})
                continue
            probs = softmax(logits[index].astype(np.float64))
            best = int(probs.argmax())
            answers.append({"label": labels[best], "score": float(probs[best]),
                            "scores": {name: float(p) for name, p in zip(labels, probs)}})  # fmt: skip
        return answers
