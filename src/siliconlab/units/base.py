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
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol

from typing_extensions import TypeVar

from siliconlab.models.base import CPU_TOKENS_PER_CALL  # noqa: F401 - re-exported: the runners' default budget

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel
    from siliconlab.models.kinds import Kind

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


#: What a unit's load() returns: a `Runner` for encoder units (the default), a `DecoderRunner` for decoder units.
RunnerT = TypeVar("RunnerT", covariant=True, default=Runner)


class Unit(ABC, Generic[RunnerT]):
    #: The model kind the unit runs (models/kinds.py); with `name`, its key in the registry (units/registry.py).
    kind: ClassVar[Kind] = "encoder"
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
    def load(self, artifact_dir: Path, threads: int) -> RunnerT:
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
    tokens_per_call: int | None = CPU_TOKENS_PER_CALL

    def synchronize(self) -> None:
        return None


# --- Decoders (generative models) -------------------------------------------------------------------------------
# Encoder units above are untouched; a decoder unit has the same availability/convert/load shape but loads a
# DecoderRunner: a prompt is prefilled once, then the reply is written one token at a time from a KV cache.

#: Teacher-forced parity gates for decoder units: per-step argmax agreement with fp32 PyTorch (docs/generate.md).
FP32_AGREEMENT_MIN = 1.0
HALF_AGREEMENT_MIN = 0.98
INT8_AGREEMENT_MIN = 0.95


class DecoderRunner(Protocol):
    """A causal LM on one unit. Ids are int64 [batch, seq]; logits come back as float32 numpy arrays."""

    max_length: int

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        """Run the whole prompt: (logits of its last position [batch, vocab], the cache to continue from)."""
        ...

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """Append one token per row ([batch]): (its logits [batch, vocab], the grown cache)."""
        ...

    def generate(self, input_ids: np.ndarray, max_new_tokens: int, on_token: TokenCallback | None = None) -> np.ndarray:
        """Greedy continuation [batch, <= max_new_tokens]; on_token(ids [batch]) is called as each step lands."""
        ...

    def synchronize(self) -> None: ...


class TokenCallback(Protocol):
    def __call__(self, token_ids: np.ndarray) -> bool | None:
        """Called with each new step's tokens; returning True stops generation (e.g. end of sequence)."""
        ...


class GreedyDecoderMixin:
    """generate() from prefill() + decode_step(): the loop every engine without its own generate uses."""

    def generate(self, input_ids: np.ndarray, max_new_tokens: int, on_token: TokenCallback | None = None) -> np.ndarray:
        import numpy as np

        logits, cache = self.prefill(input_ids)  # type: ignore[attr-defined]
        steps: list[np.ndarray] = []
        for step in range(max_new_tokens):
            token = logits.argmax(axis=-1).astype(np.int64)
            steps.append(token)
            if on_token is not None and on_token(token):
                break
            if step + 1 < max_new_tokens:
                logits, cache = self.decode_step(token, cache)  # type: ignore[attr-defined]
        width = len(steps)
        return np.stack(steps, axis=1) if width else np.zeros((input_ids.shape[0], 0), dtype=np.int64)

    def synchronize(self) -> None:
        return None


class GenerativeUnit(Unit["DecoderRunner"]):
    """A decoder unit: convert() writes the artifact, load() returns a DecoderRunner (not an encoder Runner)."""

    kind: ClassVar[Kind] = "decoder"  # encoder-decoder (T5) units say "seq2seq"
    #: Teacher-forced per-step argmax agreement with fp32 PyTorch, and the worst per-step logit cosine.
    agreement_min: ClassVar[float] = FP32_AGREEMENT_MIN
    cosine_min: ClassVar[float] = FP32_COSINE_MIN
    #: Whether the first free-run tokens must equal fp32 PyTorch's (fp32 units: yes).
    exact_free_run: ClassVar[bool] = True

    @abstractmethod
    def load(self, artifact_dir: Path, threads: int) -> DecoderRunner:
        """Load an artifact folder written by convert()."""

    def converted_runner(self, conversion: Conversion) -> DecoderRunner | None:
        """The PyTorch module handed to the engine's converter, as a DecoderRunner, when it is not the stock
        model (Core ML's stateful rewrite): the pipeline holds it to the fp32 gate, wherever the unit runs."""
        return None
