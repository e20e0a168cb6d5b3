"""Help-page presentation shared by every command: typer's rich help, minus two habits that read badly.

- On/off flags get no type column (typer prints `<bool>` next to `--force`, which takes no value).
- Docstrings are re-flowed: a single line break inside a paragraph becomes a space, so rich wraps each
  sentence to the terminal instead of keeping the source file's line breaks mid-sentence.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from typer.core import TyperCommand, TyperGroup

_SINGLE_NEWLINE = re.compile(r"(?<!\n)\n(?!\n)")


def reflow(text: str | None) -> str | None:
    """Join the lines of each paragraph; paragraphs (blank-line separated) stay apart."""
    if not text:
        return text
    return _SINGLE_NEWLINE.sub(" ", inspect.cleandoc(text))


def _hide_flag_types(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer shows the metavar instead of `<bool>`; flags take no value
    return params


class Command(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))
