"""The chat scenario's generative mode: smollm2-chat writes the reply token by token, with TTFT and tokens/s.

The retrieval chat answers on every unit side by side; a generative reply takes seconds per unit on a CPU, so
this mode answers on one decoder unit (the session's unit when it is pinned to a decoder unit, else the
default decoder order) and streams the reply as it is written. It holds the session lock while it writes, like
every other answer, so units never run at the same time. The model loads on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from siliconlab.demo.session import DemoSession, check_input

GENERATIVE_MODEL = "smollm2-chat"
#: The chat scenario's two modes: the retrieval bot over MiniLM, or a generative model.
CHAT_MODELS = ("chat-retrieval", GENERATIVE_MODEL)
#: A demo reply's token budget: a few sentences (about 6 s at the ~10 tokens/s of a 2-core CPU).
DEMO_MAX_NEW_TOKENS = 64


@dataclass
class Generation:
    """The reply so far; `stats` (the pipeline's figures) once it is done."""

    text: str
    unit: str
    done: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


class GenerativeMode:
    """One generative chat model for a demo session, loaded once on first use (or given, for tests)."""

    def __init__(self, session: DemoSession, model: str = GENERATIVE_MODEL, bot: Any = None,
                 max_new_tokens: int = DEMO_MAX_NEW_TOKENS):  # fmt: skip
        self.session = session
        self.model = model
        self.bot = bot
        self.max_new_tokens = max_new_tokens

    def unit(self) -> str:
        from siliconlab.units import registry

        pinned = self.session.units
        return pinned[0] if len(pinned) == 1 and pinned[0] in registry.names("decoder") else "best"

    def load(self) -> Any:
        with self.session.lock:  # loading is work too: it must not overlap another unit's timed answer
            if self.bot is None:
                from siliconlab.tasks import load

                self.bot = load(self.model, unit=self.unit(), cache=self.session.cache, threads=self.session.threads)
        return self.bot

    def stream(self, text: Any) -> Iterator[Generation]:
        """The reply growing piece by piece, then once more with the figures (TTFT, tokens/s, ...)."""
        text = check_input(text)
        bot = self.load()
        with self.session.lock:
            pieces = bot.stream(text, self.max_new_tokens)
            reply = ""
            try:
                for piece in pieces:
                    reply += piece
                    yield Generation(reply.lstrip(), bot.unit)
            finally:
                pieces.close()  # a reader that left stops the decoder and frees it
            yield Generation(reply.strip(), bot.unit, True, dict(bot.last_stats))


def stats_line(stats: dict[str, Any]) -> str:
    """'time to first token 412 ms, 9.8 tokens/s, 24 tokens, stopped: end of reply' (+ truncation)."""
    speed = stats.get("tokens_per_s")
    rate = f"{speed:.1f} tokens/s" if isinstance(speed, float) and speed == speed else "— tokens/s"
    line = (f"time to first token {stats.get('ttft_ms', float('nan')):.0f} ms, {rate}, {stats.get('tokens', 0)} "
            f"tokens, stopped: {stats.get('stopped', '?')}")  # fmt: skip
    if stats.get("truncated_tokens"):
        line += f", first {stats['truncated_tokens']} message tokens dropped to fit the context"
    return line
