"""What the one converter (convert/pipeline.py) asks a model kind: its fp32 reference, its parity gate, and the
files and manifest fields its artifacts carry.

Why: the lock, reuse check, integrity, manifest and remembered failures are the same for every kind; only
the gate differs. An encoder is held to its pooled outputs on real sentences (convert/parity.py); a decoder or
an encoder-decoder model to teacher-forced generation (convert/parity_generate.py). Heavy imports stay inside
the methods: importing this module costs no torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from siliconlab.models.base import LoadedModel, ModelSource
    from siliconlab.models.kinds import Kind
    from siliconlab.units.base import Conversion, Unit


class ParityGate(Protocol):
    """One kind's side of a conversion; the reference is computed once per Converter and shared by its units."""

    def reference(self, source: ModelSource) -> Any:
        """The fresh fp32 PyTorch model's outputs every unit of this model is compared with."""
        ...

    def save_model_files(self, model: LoadedModel, work: Path) -> None:
        """What every artifact of the kind carries beside the engine's files (tokenizer, config)."""
        ...

    def check(self, unit: Unit, runner: Any, model: LoadedModel, reference: Any,
              threshold: float | None = None) -> dict[str, Any]:  # fmt: skip
        """The unit's loaded artifact against the reference, as the manifest's `parity`; `threshold` replaces the
        unit's cosine gate (verify holds an artifact to the gate it was built under)."""
        ...

    def check_converted(self, unit: Unit, conversion: Conversion, model: LoadedModel, reference: Any) -> dict | None:
        """The PyTorch module the engine converted, when it differs from the stock model, held to the fp32 gate."""
        ...

    def summary(self, parity: dict[str, Any]) -> str:
        """One line of figures of a parity measured by check()."""
        ...

    def failure(self, parity: dict[str, Any]) -> str:
        """Why an artifact with this `parity` must be rejected, or '' when it passes."""
        ...

    def manifest_fields(self, model: LoadedModel) -> dict[str, Any]:
        """The manifest's `task` and `outputs`."""
        ...

    def failure_key(self) -> dict[str, Any]:
        """What, besides model, recipe and version, a remembered parity failure must match to be believed."""
        ...


def _failure(gate: ParityGate, parity: dict[str, Any], what: str, module_what: str) -> str:
    """The one-line failure of a gate's record: the converted PyTorch module's own check first (where the unit
    has one), then the artifact's; "" when it passed."""
    module = parity.get("converted_module")
    if module is not None and not module["passed"]:
        return f"{module_what} failed: {gate.summary(module)}"
    return f"{what} failed: {gate.summary(parity)}" if parity["passed"] is False else ""


class EncoderGate:
    """Pooled output (sentence embedding or logits) of real sentences, alone and in one padded batch."""

    def reference(self, source: ModelSource) -> Any:
        from siliconlab.convert.parity import reference_outputs
        from siliconlab.data import parity_texts

        return reference_outputs(source.load(), parity_texts())

    def save_model_files(self, model: LoadedModel, work: Path) -> None:
        model.tokenizer.save_pretrained(work)

    def check(self, unit: Unit, runner: Any, model: LoadedModel, reference: Any,
              threshold: float | None = None) -> dict[str, Any]:  # fmt: skip
        from siliconlab.convert.parity import check_parity

        return check_parity(runner, model, reference, threshold or unit.cosine_min).to_dict()

    def check_converted(self, unit: Unit, conversion: Conversion, model: LoadedModel, reference: Any) -> dict | None:
        if conversion.converted_module is None:
            return None
        from siliconlab.convert.parity import check_parity
        from siliconlab.models.reference import TorchRunner

        module_runner = TorchRunner(conversion.converted_module, output_names=model.output_names)
        return check_parity(module_runner, model, reference, conversion.converted_module_cosine_min).to_dict()

    def summary(self, parity: dict[str, Any]) -> str:
        from siliconlab.convert.parity import ParityReport

        return ParityReport(**{key: value for key, value in parity.items() if key != "converted_module"}).summary()

    def failure(self, parity: dict[str, Any]) -> str:
        return _failure(self, parity, "parity", "converted PyTorch module parity")

    def manifest_fields(self, model: LoadedModel) -> dict[str, Any]:
        return {"task": model.task, "outputs": list(model.output_names)}

    def failure_key(self) -> dict[str, Any]:
        return {}


@contextmanager
def single_threaded() -> Iterator[None]:
    """PyTorch on one CPU thread inside, restored after. The generation gate is hundreds of one-token decode
    steps, each a few hundred small ops: a second OpenMP thread gains little on them, and on a shared machine
    every op's barrier waits for a descheduled thread — smollm2-chat's 24-step reference took 1.7 s per prompt
    on one thread against 4.8-8.7 s on two (2-core AMD EPYC, other processes running; issue 25). Both the
    reference and the unit under test run this way, so their reduction order is the same too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class GenerationGate:
    """Teacher-forced greedy generation on fixed prompts: per-step argmax agreement, logit cosine, free run."""

    def __init__(self, prompts: int | None = None, steps: int | None = None):
        """prompts/steps size the reference: the defaults (parity_generate.PROMPTS/STEPS) for every artifact;
        tests pass fewer."""
        from siliconlab.convert.parity_generate import PROMPTS, STEPS

        self.prompts = prompts or PROMPTS
        self.steps = steps or STEPS

    def reference(self, source: ModelSource) -> Any:
        from siliconlab.convert.parity_generate import reference_generation

        model = source.load()
        with single_threaded():
            return reference_generation(model, steps=self.steps, count=self.prompts)

    def save_model_files(self, model: LoadedModel, work: Path) -> None:
        if model.tokenizer is not None:  # architecture-only models take random ids
            model.tokenizer.save_pretrained(work)
        model.config.save_pretrained(work)  # every artifact knows its architecture and context length

    def check(self, unit: Unit, runner: Any, model: LoadedModel, reference: Any,
              threshold: float | None = None) -> dict[str, Any]:  # fmt: skip
        from siliconlab.convert.parity_generate import check_generation_parity

        gates = (unit.agreement_min, threshold or unit.cosine_min, unit.exact_free_run)  # type: ignore[attr-defined]
        with single_threaded():
            return check_generation_parity(runner, reference, *gates).to_dict()

    def check_converted(self, unit: Unit, conversion: Conversion, model: LoadedModel, reference: Any) -> dict | None:
        module_runner = unit.converted_runner(conversion)  # type: ignore[attr-defined]
        if module_runner is None:
            return None
        from siliconlab.convert.parity_generate import check_generation_parity
        from siliconlab.units.base import FP32_AGREEMENT_MIN, FP32_COSINE_MIN

        with single_threaded():
            return check_generation_parity(
                module_runner, reference, FP32_AGREEMENT_MIN, FP32_COSINE_MIN, True
            ).to_dict()

    def summary(self, parity: dict[str, Any]) -> str:
        from siliconlab.convert.parity_generate import GenerationParity

        return GenerationParity(**{key: value for key, value in parity.items() if key != "converted_module"}).summary()

    def failure(self, parity: dict[str, Any]) -> str:
        return _failure(self, parity, "generation parity", "converted PyTorch module's generation parity")

    def manifest_fields(self, model: LoadedModel) -> dict[str, Any]:
        return {"task": "generation", "outputs": ["logits"]}

    def failure_key(self) -> dict[str, Any]:
        return {"parity_prompts": self.prompts, "parity_steps": self.steps}


def gate_for(kind: Kind) -> ParityGate:
    """The parity gate of a model kind (models/kinds.py)."""
    return EncoderGate() if kind == "encoder" else GenerationGate()
