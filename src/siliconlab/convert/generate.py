"""Convert-or-reuse for decoder units: the same store, locks and manifest as encoders, a generation parity gate.

An artifact is reused when its manifest's source hash, recipe and siliconlab version match and its
generation parity passed (convert/pipeline.py `_reuse_check`); otherwise it is rebuilt from a fresh model
and gated by teacher-forced parity (convert/parity_generate.py) before it replaces the old one.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from siliconlab.convert.integrity import file_records
from siliconlab.convert.manifest import MANIFEST, SCHEMA_VERSION, directory_bytes, write_json_atomic
from siliconlab.convert.parity_generate import (
    PROMPTS,
    STEPS,
    GenerationReference,
    check_generation_parity,
    reference_generation,
)
from siliconlab.convert.pipeline import UnitOutcome, _reuse_check, base_versions, model_folder_name, one_line
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.models.base import ModelSource
from siliconlab.models.remote_code import refuse_remote_code
from siliconlab.paths import share_tree
from siliconlab.store import SHARED_FOLDER, touch_last_used, unit_lock
from siliconlab.units.base import FP32_AGREEMENT_MIN, FP32_COSINE_MIN, DecoderRunner, GenerativeUnit
from siliconlab.version import __version__


class GenerativeConverter:
    """Holds the fp32 reference so several decoder units are checked against the same run."""

    def __init__(self, source: ModelSource, out: Path, threads: int, prompts: int = PROMPTS, steps: int = STEPS):
        """prompts/steps size the parity reference: the defaults for every artifact; tests pass fewer."""
        self.source = source
        self.reference_size = (prompts, steps)
        self.out = Path(out)
        self.threads = threads
        self.source_hash = source.content_hash()
        self._reference: GenerationReference | None = None

    @property
    def model_dir(self) -> Path:
        return self.out / model_folder_name(self.source)

    def reference(self) -> GenerationReference:
        if self._reference is None:
            prompts, steps = self.reference_size
            self._reference = reference_generation(self.source.load(), steps=steps, count=prompts)
        return self._reference

    def convert_unit(self, unit: GenerativeUnit, force: bool = False) -> UnitOutcome:
        available = unit.availability()
        if not available.ok and not unit.conversion_availability().ok:
            return UnitOutcome(unit.name, "unavailable", error=available.reason)
        artifact_dir = self.model_dir / unit.name
        with unit_lock(self.model_dir, unit.name, f"waiting for another process converting {unit.name}"):
            if not force:
                cached, notice = _reuse_check(artifact_dir, unit, self.source_hash)
                if cached is not None:
                    touch_last_used(artifact_dir)
                    return UnitOutcome(unit.name, "cached", artifact_dir, cached)
                if notice:
                    log.warning(notice)
            return self._convert_locked(unit, artifact_dir)

    def _convert_locked(self, unit: GenerativeUnit, artifact_dir: Path) -> UnitOutcome:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        unit.shared_dir = self.model_dir / SHARED_FOLDER
        work = Path(tempfile.mkdtemp(dir=self.model_dir, prefix=f".{unit.name}.tmp-"))
        try:
            manifest = self._build(unit, work)
            failure = _parity_failure(manifest["parity"])
            if failure:
                return UnitOutcome(unit.name, "failed", None, manifest, failure)
            if artifact_dir.exists():
                shutil.rmtree(artifact_dir)
            share_tree(work)  # mkdtemp and mkstemp make them private; artifacts are meant to be shared
            work.rename(artifact_dir)
            touch_last_used(artifact_dir)
            return UnitOutcome(unit.name, "converted", artifact_dir, manifest)
        except UsageError:
            raise
        except Exception as exc:  # one unit failing must not stop the others
            log.debug("conversion of %s failed", unit.name, exc_info=True)
            return UnitOutcome(unit.name, "failed", error=one_line(exc))
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _build(self, unit: GenerativeUnit, work: Path) -> dict[str, Any]:
        reference = self.reference()
        model = self.source.load()  # fresh: an exporter may change the model it traces
        started = time.perf_counter()
        conversion = unit.convert(model, work)
        seconds = time.perf_counter() - started
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(work)
        model.config.save_pretrained(work)  # every artifact knows its architecture and context length
        structure = unit.check_structure(work, model)
        runnable = unit.availability()
        if runnable.ok:
            runner = unit.load(work, self.threads)
            gates = (unit.agreement_min, unit.cosine_min, unit.exact_free_run)
            parity = check_generation_parity(runner, reference, *gates).to_dict()
        else:  # converted here, runs elsewhere (Core ML on Linux): parity is not measured, and says why
            parity = {"passed": None, "reason": runnable.reason, "threshold": unit.cosine_min}
        module_runner = unit.converted_runner(conversion)
        if module_runner is not None:  # the module the engine converted, run in PyTorch fp32: the fp32 gate
            module = check_generation_parity(module_runner, reference, FP32_AGREEMENT_MIN, FP32_COSINE_MIN, True)
            parity["converted_module"] = module.to_dict()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "unit": unit.name,
            "engine": unit.engine,
            "device": unit.device,
            "precision": unit.precision,
            "recipe": unit.recipe,
            "model": self.source.name,
            "model_source": self.source.source,
            "model_spec": self.source.spec or self.source.name,
            "source_hash": self.source_hash,
            "task": "generation",
            "outputs": ["logits"],
            "max_length": model.max_length,
            "siliconlab_version": __version__,
            "library_versions": base_versions() | conversion.library_versions,
            "conversion_seconds": round(seconds, 3),
            "artifact_bytes": directory_bytes(work),
            "files": file_records(work),
            "graph": conversion.graph,
            "structure": structure,
            "verified": "parity" if runnable.ok else "structure",
            "parity": parity,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_json_atomic(work / MANIFEST, manifest)
        return manifest


def _parity_failure(parity: dict[str, Any]) -> str:
    """Why a freshly built decoder artifact must be rejected, or '' when it passes its gates."""
    from siliconlab.convert.parity_generate import GenerationParity

    module = parity.get("converted_module")
    if module is not None and not module["passed"]:
        return f"converted PyTorch module's generation parity failed: {GenerationParity(**module).summary()}"
    if parity["passed"] is False:
        figures = {key: value for key, value in parity.items() if key != "converted_module"}
        return f"generation parity failed: {GenerationParity(**figures).summary()}"
    return ""


def load_decoder(artifact_dir: Path, unit: GenerativeUnit, threads: int) -> DecoderRunner:
    """Load a converted decoder artifact, any failure as one clear line; an artifact whose configs ask to run
    code (edited after conversion: siliconlab never writes one) is refused before the unit's loader reads it."""
    refuse_remote_code(artifact_dir)
    try:
        runner = unit.load(artifact_dir, threads)
    except Exception as exc:
        raise SiliconlabError(
            f"artifact {artifact_dir} is corrupt or incomplete ({one_line(exc)}); convert again"
        ) from exc
    touch_last_used(artifact_dir)
    return runner
