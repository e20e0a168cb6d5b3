"""The model kinds the bench loop times, and where each finds its units, its converter and its loader.

The loop (plan → one process per unit → bursts → rows) is the same for every kind; what differs is behind
these few functions. They are the bench's only door to the unit registries, so a registry keyed by
(kind, name) is a change here and nowhere else in bench/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from siliconlab.models.base import ModelSource
from siliconlab.units.base import Unit

ModelKind = Literal["encoder", "decoder", "seq2seq"]
KINDS: tuple[ModelKind, ...] = ("encoder", "decoder", "seq2seq")


def kind_of(source: ModelSource) -> ModelKind:
    """Encoder, causal decoder, or encoder-decoder (T5): which units, converter and workloads apply."""
    from siliconlab.models import is_generative
    from siliconlab.units.decoders import is_seq2seq

    if not is_generative(source):
        return "encoder"
    return "seq2seq" if is_seq2seq(getattr(source, "config", None)) else "decoder"


def unit_named(kind: ModelKind, name: str) -> Unit:
    """The unit `name` of this kind; an unknown name is one UsageError listing the kind's units."""
    if kind == "encoder":
        from siliconlab.units import get_unit

        return get_unit(name)
    from siliconlab.units.decoders import get_decoder_unit

    return get_decoder_unit(name, seq2seq=kind == "seq2seq")


def units_named(kind: ModelKind, spec: str) -> list[Unit]:
    """'all': every unit of the kind available here; otherwise the comma-listed names, each checked."""
    if kind == "encoder":
        from siliconlab.units import select_units

        return select_units(spec)
    from siliconlab.units.decoders import select_decoder_units

    return list(select_decoder_units(spec, seq2seq=kind == "seq2seq"))


def converter(kind: ModelKind, source: ModelSource, cache_dir: Path, threads: int) -> Any:
    """Convert-or-reuse for the kind: an object whose convert_unit(unit) returns a convert.pipeline.UnitOutcome."""
    if kind == "encoder":
        from siliconlab.convert.pipeline import Converter

        return Converter(source, cache_dir, threads)
    from siliconlab.convert.generate import GenerativeConverter

    return GenerativeConverter(source, cache_dir, threads)


def load(kind: ModelKind, artifact_dir: Path, unit: Unit, threads: int) -> tuple[Any, dict[str, Any]]:
    """Load a converted artifact: (runner, facts the timing process reports: max_length, executed_precision)."""
    if kind == "encoder":
        from siliconlab.convert.pipeline import executed_precision, load_artifact

        runner, manifest = load_artifact(artifact_dir, unit, threads)
        return runner, {"max_length": int(manifest.get("max_length", 512)),
                        "executed_precision": executed_precision(runner, unit)}  # fmt: skip
    from siliconlab.convert.generate import load_decoder
    from siliconlab.convert.pipeline import executed_precision

    decoder = load_decoder(artifact_dir, unit, threads)  # type: ignore[arg-type]
    return decoder, {"max_length": int(decoder.max_length), "executed_precision": executed_precision(decoder, unit)}
