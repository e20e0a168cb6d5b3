"""Real chat questions from the PyPI package chatterbot-corpus: prompts for generation parity and benchmarks."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from siliconlab.errors import SiliconlabError


@lru_cache(maxsize=1)
def chat_questions() -> tuple[str, ...]:
    """Every distinct conversation opener that is a question ('...?'), in file order."""
    import yaml

    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise SiliconlabError("chat prompts need the package chatterbot-corpus (pip install it)")
    folder = Path(spec.submodule_search_locations[0]) / "data" / "english"
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conversation in data.get("conversations") or []:
            first = str(conversation[0]).strip() if conversation else ""
            if first.endswith("?"):
                seen.setdefault(first.lower(), first)
    return tuple(seen.values())


def spread(items: tuple[str, ...], count: int) -> list[str]:
    """`count` items evenly spaced through `items` (deterministic, covering every category)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]
