"""Compute units, one folder per engine family (torch/, onnxruntime/, openvino/, fastbert/, coreml/, mlx/).

The registry is units/registry.py, keyed by (model kind, unit name). The names below are the encoder view of it,
kept for the many callers that only ever see encoders (bench's encoder plan, export, demo, eval).
"""

from __future__ import annotations

from siliconlab.units import registry
from siliconlab.units.base import Availability, Runner, Unit
from siliconlab.units.registry import BASELINE

#: name -> encoder unit class (registry.classes("encoder")).
REGISTRY: dict[str, type[Unit]] = registry.classes("encoder")


def get_unit(name: str) -> Unit:
    """The encoder unit `name` (registry.get("encoder", name))."""
    return registry.get("encoder", name)


def select_units(spec: str | None) -> list[Unit]:
    """Encoder units: 'all' / None -> every available one; otherwise a comma list, each name checked."""
    return registry.select("encoder", spec)


__all__ = ["BASELINE", "REGISTRY", "Availability", "Runner", "Unit", "get_unit", "registry", "select_units"]
