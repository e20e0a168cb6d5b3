"""The model kinds the bench loop times, and where each finds its units, its converter and its loader.

The loop (plan → one process per unit → bursts → rows) is the same for every kind; the kind is decided by
models/kinds.py, units come from the one (kind, name) registry, and the one converter asks the kind for its
parity gate. These few functions are the bench's only door to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siliconlab.models.base import ModelSource
from siliconlab.models.kinds import KINDS, Kind
from siliconlab.models.kinds import kind_of as _kind_of
from siliconlab.units.base import Unit

ModelKind = Kind
__all__ = ["KINDS", "ModelKind", "converter", "kind_of", "load", "unit_named", "units_named"]


def kind_of(source: ModelSource) -> ModelKind:
    """Encoder, causal decoder, or encoder-decoder (T5): which units, converter and workloads apply."""
    return _kind_of(source)


def unit_named(kind: ModelKind, name: str) -> Unit:
    """The unit `name` of this kind; an unknown name is one UsageError listing the kind's units."""
    from siliconlab.units import registry

    return registry.get(kind, name)


def units_named(kind: ModelKind, spec: str) -> list[Unit]:
    """'all': every unit of the kind available here; otherwise the comma-listed names, each checked."""
    from siliconlab.units import registry

    return registry.select(kind, spec)


def converter(kind: ModelKind, source: ModelSource, cache_dir: Path, threads: int) -> Any:
    """Convert-or-reuse (the one converter; it takes the kind's parity gate from the source)."""
    from siliconlab.convert.pipeline import Converter

    return Converter(source, cache_dir, threads)


def load(kind: ModelKind, artifact_dir: Path, unit: Unit[Any], threads: int) -> tuple[Any, dict[str, Any]]:
    """Load a converted artifact: (runner, facts the timing process reports: max_length, executed_precision)."""
    from siliconlab.convert.pipeline import executed_precision, load_artifact

    runner, manifest = load_artifact(artifact_dir, unit, threads)
    max_length = manifest.get("max_length", 512) if kind == "encoder" else runner.max_length
    return runner, {"max_length": int(max_length), "executed_precision": executed_precision(runner, unit)}
