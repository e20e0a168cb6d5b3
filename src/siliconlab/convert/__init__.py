"""Conversion with parity gates.

The pipeline (and with it torch) loads on first use of one of its names, so that importing a light submodule
such as convert.manifest (bench results use it) costs no torch import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from siliconlab.convert.pipeline import Converter, UnitOutcome, convert_all, load_artifact

__all__ = ["Converter", "UnitOutcome", "convert_all", "load_artifact"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from siliconlab.convert import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
