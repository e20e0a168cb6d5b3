"""The generative chatbot: `reply(text)` writes the answer token by token with a causal LM on one decoder unit.

Same `reply` as chat-retrieval ({reply, unit, ms, ...}) plus what a user of a generative model feels: time
to first token and decode tokens/s; `stream(text)` yields the reply's text as it is written. The prompt is
the model's chat template around the message; a message longer than the context leaves room for the reply by
dropping its oldest tokens, with a notice. Generation is greedy (reproducible; what parity checks).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.tasks.pipeline import Loaded, Pipeline, as_list
from siliconlab.text import check_text

if TYPE_CHECKING:
    from siliconlab.units.base import DecoderRunner

DEFAULT_MAX_NEW_TOKENS = 128
#: Pieces generation may run ahead of a slow reader.
AHEAD = 8
#: Longest reply one call may ask for (a bound on time, not on the model: it is also capped by the context).
MAX_NEW_TOKENS_LIMIT = 2048


def stop_ids(tokenizer: Any, artifact_dir: Path | None) -> set[int]:
    """Token ids that end a reply: the tokenizer's end-of-sequence token and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config_path = artifact_dir / "generation_config.json" if artifact_dir is not None else None
    if config_path is not None and config_path.is_file():
        import json

        value = json.loads(config_path.read_text()).get("eos_token_id")
        ids.update(int(v) for v in (value if isinstance(value, list) else [value]) if isinstance(v, int))
    return ids


class TextPieces:
    """Incremental detokenization: the new text each token adds, holding back an unfinished UTF-8 character."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece, self.emitted = text[len(self.emitted) :], text
        return piece


class GenerativeChat(Pipeline):
    task = "chat"
    methods = ("reply", "stream")

    def __init__(self, loaded: Loaded):
        super().__init__(loaded)
        if loaded.tokenizer is None:
            raise UsageError(
                f"model '{loaded.model}' is architecture only (random weights, no tokenizer): it cannot chat; "
                f"time it with `siliconlab bench {loaded.model}`"
            )
        self.stops = stop_ids(loaded.tokenizer, loaded.artifact_dir)
        self.last_stats: dict[str, Any] = {}

    def check_max_new_tokens(self, max_new_tokens: Any) -> int:
        """The reply's token budget; None: the default (128), capped by a short model's context."""
        limit = min(MAX_NEW_TOKENS_LIMIT, self.loaded.max_length - 1)
        if max_new_tokens is None:
            return min(DEFAULT_MAX_NEW_TOKENS, limit)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
            raise UsageError(f"max_new_tokens must be an integer, got {type(max_new_tokens).__name__}")
        if not 1 <= int(max_new_tokens) <= limit:
            raise UsageError(f"max_new_tokens must be between 1 and {limit}, got {max_new_tokens}")
        return int(max_new_tokens)

    def prompt(self, text: Any, max_new_tokens: int) -> tuple[np.ndarray, int]:
        """(prompt ids [1, n], message tokens dropped from the left to fit the context with the reply).
        `text` is one message, or a conversation: a list of {role: system|user|assistant, content}."""
        from siliconlab.tasks.messages import check_messages, fit, is_conversation

        if is_conversation(text):
            messages = check_messages(text)
        else:
            items, single = as_list(text)
            if not single and len(items) != 1:
                raise UsageError("reply() answers one message at a time")
            messages = [{"role": "user", "content": check_text(items[0], "the message")}]
        ids, dropped = fit(self.loaded.tokenizer, messages, self.loaded.max_length, max_new_tokens)
        if dropped:
            log.warning("the message is longer than the model's context of %d tokens (with %d for the reply): "
                        "its first %d tokens were dropped", self.loaded.max_length, max_new_tokens,
                        dropped)  # fmt: skip
        return np.asarray([ids], dtype=np.int64), dropped

    def stream(self, text: Any, max_new_tokens: int | None = None) -> Iterator[str]:
        """Pieces of the reply's text as they are written; `last_stats` holds the figures once it ends.
        Closing the iterator early (a client that left) stops generation at the next token."""
        max_new_tokens = self.check_max_new_tokens(max_new_tokens)
        ids, dropped = self.prompt(text, max_new_tokens)
        return self._stream(ids, dropped, max_new_tokens)

    def _stream(self, ids: np.ndarray, dropped: int, max_new_tokens: int) -> Iterator[str]:
        # Bounded: generation runs at most a few tokens ahead of the reader, so a reader that leaves stops it.
        pieces: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=AHEAD)
        cancel = threading.Event()

        def put(item: tuple[str, Any]) -> bool:
            """Hand an item to the reader; False when the reader has left."""
            while not cancel.is_set():
                try:
                    pieces.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        decoder = TextPieces(self.loaded.tokenizer)
        times: list[float] = []
        stop_reason = {"why": "length"}

        def on_token(tokens: np.ndarray) -> bool:
            times.append(time.perf_counter())
            token = int(tokens[0])
            if token in self.stops:
                stop_reason["why"] = "end of reply"
                return True
            return not put(("piece", decoder.add(token)))

        def work() -> None:
            try:
                with self._lock:
                    self.loaded.runner.generate(ids, max_new_tokens, on_token)
                put(("done", None))
            except Exception as exc:  # reported to the reader, not lost in a thread
                put(("error", exc))

        begin = time.perf_counter()
        thread = threading.Thread(target=work, name="siliconlab-generate", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = pieces.get()
                if kind == "piece":
                    if value:
                        yield value
                elif kind == "error":
                    raise SiliconlabError(f"generation failed on {self.unit}: {value}") from value
                else:
                    break
        except GeneratorExit:
            stop_reason["why"] = "stopped by the caller"
            raise
        finally:
            cancel.set()
            thread.join()
            self._record(begin, times, ids.shape[1], dropped, decoder, stop_reason["why"])

    def _record(self, begin: float, times: list[float], prompt_tokens: int, dropped: int, decoder: TextPieces,
                why: str) -> None:  # fmt: skip
        end = times[-1] if times else time.perf_counter()
        ttft = (times[0] - begin) * 1e3 if times else float("nan")
        decode_s = end - times[0] if len(times) > 1 else 0.0
        self.last_ms = (end - begin) * 1e3
        self.last_stats = {
            "reply": decoder.emitted.strip(),
            "unit": self.unit,
            "model": self.model,
            "ms": self.last_ms,
            "ttft_ms": ttft,
            "tokens": len(times),
            "tokens_per_s": (len(times) - 1) / decode_s if decode_s > 0 else float("nan"),
            "prompt_tokens": prompt_tokens,
            "truncated_tokens": dropped,
            "stopped": why,
            "answered": True,
        }

    def reply(self, text: Any, max_new_tokens: int | None = None) -> dict[str, Any]:
        """{reply, unit, model, ms, ttft_ms, tokens, tokens_per_s, prompt_tokens, truncated_tokens, stopped}."""
        for _ in self.stream(text, max_new_tokens):
            pass
        return dict(self.last_stats)


def open_generative(source: Any, unit: Any, cache: Path, threads: int, why: str) -> GenerativeChat:
    """Convert-or-reuse `source` on the decoder `unit`, then the chat pipeline (tasks/loader.py `first_serving`
    picks the unit, from the model's bench record or the decoder default order)."""
    from transformers import AutoTokenizer

    from siliconlab.convert.pipeline import Converter, load_artifact
    from siliconlab.progress import stage

    outcome = Converter(source, cache, threads).convert_unit(unit)
    if not outcome.ok or outcome.artifact_dir is None:
        raise SiliconlabError(outcome.error or f"conversion for {unit.name} failed")
    folder = outcome.artifact_dir
    with stage(f"{source.name} {unit.name}: load"):
        runner = cast("DecoderRunner", load_artifact(folder, unit, threads)[0])  # a decoder kind's unit
        tokenizer = None if source.architecture_only else AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    loaded = Loaded(source.name, "chat", unit.name, runner, tokenizer, runner.max_length, outcome.artifact_dir,
                    why_unit=why)  # fmt: skip
    return GenerativeChat(loaded)
