"""Conversion with parity gates."""

from siliconlab.convert.pipeline import Converter, UnitOutcome, convert_all, load_artifact

__all__ = ["Converter", "UnitOutcome", "convert_all", "load_artifact"]
