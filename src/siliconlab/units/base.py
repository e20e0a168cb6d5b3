"""The compute-unit interface: one small contract that CPU, NVIDIA, CoreML and MLX units all implement.

A unit is (engine, device, precision) under a stable name. It says whether it can run here (and why not),
converts a reference model into an artifact folder, and loads that folder into a Runner that maps
token ids + attention mask to the task's outputs as numpy arrays.
"""

from __future__ import annotations

import importlib.util
import platform
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from siliconlab.models.base import LoadedModel

FP32_COSINE_MIN = 0.99999
INT8_COSINE_MIN = 0.99


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls) -> Availability:
        return cls(True, "")

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)


@dataclass
class Conversion:
    """What convert() reports back for the manifest."""

    graph: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)


class Runner(Protocol):
    output_names: tuple[str, ...]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        """Inputs are int64 [batch, seq]; any batch and sequence length the model accepts."""
        ...

    def synchronize(self) -> None:
        """Block until queued device work is done (a no-op on the CPU); the bench timer calls it."""
        ...


class Unit(ABC):
    name: ClassVar[str]
    engine: ClassVar[str]
    device: ClassVar[str]
    precision: ClassVar[str]
    #: Parity gate on the pooled output (sentence embedding or logits) of every sentence.
    cosine_min: ClassVar[float] = FP32_COSINE_MIN
    #: Bump when the conversion recipe changes so cached artifacts are rebuilt.
    recipe: ClassVar[str] = "1"
    #: Python packages the unit imports; missing ones make it unavailable with that reason.
    requires: ClassVar[tuple[str, ...]] = ()

    def availability(self) -> Availability:
        missing = [pkg for pkg in self.requires if importlib.util.find_spec(pkg) is None]
        if missing:
            return Availability.no(f"missing Python package(s): {', '.join(missing)}")
        return self.platform_availability()

    def platform_availability(self) -> Availability:
        """OS/device checks beyond packages; CPU units run everywhere."""
        return Availability.yes()

    @abstractmethod
    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        """Write the artifact for `model` into out_dir (which exists and is empty)."""

    @abstractmethod
    def load(self, artifact_dir: Path, threads: int) -> Runner:
        """Load an artifact folder written by convert()."""

    def describe(self) -> dict[str, Any]:
        available = self.availability()
        return {
            "unit": self.name,
            "engine": self.engine,
            "device": self.device,
            "precision": self.precision,
            "available": available.ok,
            "reason": available.reason,
        }


def machine_arch() -> str:
    return platform.machine().lower()


class CpuRunnerMixin:
    def synchronize(self) -> None:
        return None
