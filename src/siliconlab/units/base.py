"""The compute-unit interface: one small contract that CPU, NVIDIA, CoreML and MLX units all implement.

A unit is (engine, device, precision) under a stable name. It says whether it can run here (and why not),
converts a reference model into an artifact folder, and loads that folder into a Runner that maps
token ids + attention mask to the task's outputs as numpy arrays.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

FP32_COSINE_MIN = 0.99999
INT8_COSINE_MIN = 0.99
#: fp16/bf16 units (GPU tensor cores, CoreML fp16 programs).
HALF_COSINE_MIN = 0.999


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
    #: The fp32 PyTorch module handed to the engine's converter when it differs from the stock model (a rewrite
    #: or tracing wrapper). The pipeline checks its parity too — the one check left where the artifact can't run.
    converted_module: Any = None
    #: Its parity gate (pooled cosine, every sentence): fp32 rewrites ~1e-4 from the stock model at most.
    converted_module_cosine_min: float = 0.9999


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
    #: The arithmetic the unit runs in, when it differs from its storage precision (weight-only int8 computes in
    #: fp32/fp16): the bench holds it to that floor.
    compute_precision: ClassVar[str | None] = None
    #: Parity gate on the pooled output (sentence embedding or logits) of every sentence.
    cosine_min: ClassVar[float] = FP32_COSINE_MIN
    #: Bump when the conversion recipe changes so cached artifacts are rebuilt.
    recipe: ClassVar[str] = "1"
    #: Python packages the unit imports; missing ones make it unavailable with that reason.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Set by the Converter: a per-model folder where units of one engine may share work (e.g. one CoreML
    #: package for four compute units). None means: share nothing.
    shared_dir: Path | None = None

    def availability(self) -> Availability:
        packages = self.package_availability()
        return packages if not packages.ok else self.platform_availability()

    def package_availability(self) -> Availability:
        missing = [pkg for pkg in self.requires if importlib.util.find_spec(pkg) is None]
        if missing:
            return Availability.no(f"missing Python package(s): {', '.join(missing)}")
        return Availability.yes()

    def platform_availability(self) -> Availability:
        """OS/device checks beyond packages; CPU units run everywhere."""
        return Availability.yes()

    def conversion_availability(self) -> Availability:
        """Can this machine *build* the artifact? By default only where it can also run it.

        Units whose converter runs anywhere (CoreML converts on Linux, predicts only on macOS) override this;
        the pipeline then converts, runs check_structure() and the converted module's parity, and records
        parity as not measured with the run-availability reason.
        """
        return self.availability()

    def timing_availability(self) -> Availability:
        """Should `bench` time this unit here by default? Units that run but whose timings would mislead
        (e.g. a reference-BLAS CPU fallback of a GPU framework) say why not; naming them explicitly still works."""
        return self.availability()

    def configure(self, **options: Any) -> None:
        """Set unit options a command exposes (e.g. CoreML's `ane_optimized`). Units without options ignore them;
        an option the unit has is set only when given (None means "the unit's default")."""
        for key, value in options.items():
            if value is not None and key in self.options:
                setattr(self, key, value)

    #: Option names configure() accepts for this unit.
    options: ClassVar[tuple[str, ...]] = ()

    def check_structure(self, artifact_dir: Path, model: LoadedModel) -> dict[str, Any]:
        """Checks that need no prediction (reload, interface, op histogram...); raise on a defect. Optional."""
        return {}

    @abstractmethod
    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        """Write the artifact for `model` into out_dir (which exists and is empty)."""

    @abstractmethod
    def load(self, artifact_dir: Path, threads: int) -> Runner:
        """Load an artifact folder written by convert()."""

    def describe(self) -> dict[str, Any]:
        """One notion of availability, shown the same by `units`, `bench` and `load`: runs here (available),
        is timed by `bench ... all` (timed), or only converts here (convertible), each with its reason."""
        available = self.availability()
        timed = self.timing_availability() if available.ok else available
        return {
            "unit": self.name,
            "engine": self.engine,
            "device": self.device,
            "precision": self.precision,
            "available": available.ok,
            "reason": available.reason,
            "timed": timed.ok,
            "timing_reason": "" if timed.ok else timed.reason,
            "convertible": available.ok or self.conversion_availability().ok,
        }


class CpuRunnerMixin:
    def synchronize(self) -> None:
        return None
