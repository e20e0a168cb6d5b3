"""The decoder and seq2seq views of the unit registry (units/registry.py), for callers outside units/ that
have not moved to `registry.get(kind, name)` yet; the kind of a model is decided in models/kinds.py."""

from __future__ import annotations

from typing import Any

from siliconlab.models.kinds import generation_kind
from siliconlab.units import registry
from siliconlab.units.base import GenerativeUnit
from siliconlab.units.registry import BASELINE as DECODER_BASELINE

DECODER_REGISTRY: dict[str, type[GenerativeUnit]] = registry.classes("decoder")  # type: ignore[assignment]
SEQ2SEQ_REGISTRY: dict[str, type[GenerativeUnit]] = registry.classes("seq2seq")  # type: ignore[assignment]
DEFAULT_ORDER = registry.DEFAULT_ORDER["decoder"]


def get_decoder_unit(name: str, seq2seq: bool = False) -> GenerativeUnit:
    return registry.get("seq2seq" if seq2seq else "decoder", name)  # type: ignore[return-value]


def is_seq2seq(config: Any) -> bool:
    return generation_kind(config) == "seq2seq"


def select_decoder_units(spec: str | None, seq2seq: bool = False, timing: bool = False) -> list[GenerativeUnit]:
    return registry.select("seq2seq" if seq2seq else "decoder", spec, timing)  # type: ignore[return-value]


__all__ = ["DECODER_BASELINE", "DECODER_REGISTRY", "DEFAULT_ORDER", "SEQ2SEQ_REGISTRY", "get_decoder_unit",
           "is_seq2seq", "select_decoder_units"]  # fmt: skip
