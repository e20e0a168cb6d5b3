"""convert: model -> one artifact folder per unit, each gated by parity; unchanged inputs reuse the artifact.

One converter for every model kind: the lock, reuse check, integrity, manifest, remembered failures and
notices are the same for encoders, decoders and encoder-decoder models; the kind's parity gate
(convert/kinds.py) supplies the reference, the check and the failure message.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from siliconlab.convert.integrity import check_files, file_records
from siliconlab.convert.kinds import ParityGate, gate_for
from siliconlab.convert.manifest import (
    MANIFEST,
    SCHEMA_VERSION,
    directory_bytes,
    read_manifest,
    write_json_atomic,
)
from siliconlab.cpu_features import detect as detect_cpu
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.log import log
from siliconlab.models.base import ModelSource
from siliconlab.models.kinds import kind_of
from siliconlab.models.remote_code import refuse_remote_code
from siliconlab.paths import share_tree
from siliconlab.progress import ProgressCallback, reporting, stage
from siliconlab.store import SHARED_FOLDER, touch_last_used, unit_lock
from siliconlab.units.base import Availability, RunnerT, Unit
from siliconlab.version import __version__


@dataclass
class UnitOutcome:
    unit: str
    status: str  # converted | cached | failed | unavailable
    artifact_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    notice: str = ""  # why a cached artifact was not reused (e.g. a file changed since conversion)

    @property
    def ok(self) -> bool:
        return self.status in ("converted", "cached")


def model_folder_name(source: ModelSource) -> str:
    """The model's folder under --out: one path component, never `..` or hidden. A model path ending in `..`
    once named its model `..`, and its artifacts were written beside --out instead of inside it."""
    name = source.name.replace("/", "--").replace("\\", "--").replace("\x00", "")
    return name.lstrip(".") or "model"


def base_versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "siliconlab": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
    }


def _reuse_check(
    artifact_dir: Path, unit: Unit[Any], source_hash: str, verify: bool = False
) -> tuple[dict[str, Any] | None, str]:
    """(manifest, '') when the artifact can be reused as is; else (None, why not — '' when there is nothing
    to say, e.g. no artifact yet or the inputs changed, which is an ordinary rebuild)."""
    try:
        manifest = read_manifest(artifact_dir)
    except SiliconlabError:
        return None, ""
    parity = manifest.get("parity", {})
    # An artifact verified by structure only is reused only while prediction is still impossible here:
    # on a machine that can run it, it is rebuilt and gated by real parity.
    verified = parity.get("passed") is True or (
        parity.get("passed") is None and manifest.get("verified") == "structure" and not unit.availability().ok
    )
    same = (
        manifest.get("source_hash") == source_hash
        and manifest.get("unit") == unit.name
        and manifest.get("recipe") == unit.recipe
        and manifest.get("siliconlab_version") == __version__
        and verified
    )
    if not same:
        return None, ""
    integrity = check_files(artifact_dir, manifest, verify=verify)
    if not integrity.ok:
        what = "cannot be checked" if integrity.unverifiable else "changed since conversion"
        return None, f"artifact {artifact_dir.parent.name}/{unit.name} {what} ({integrity.summary()}): rebuilding"
    return manifest, ""


class Converter:
    """Holds the reference outputs so several units are checked against the same fresh PyTorch run."""

    def __init__(self, source: ModelSource, out: Path, threads: int, verify: bool = False,
                 gate: ParityGate | None = None, progress: ProgressCallback | None = None):  # fmt: skip
        """`gate`: the kind's parity gate (convert/kinds.py), chosen from the model's kind unless given (tests
        pass a smaller generation reference). `progress`: gets every stage (reference, convert, parity check,
        load) as it is measured (siliconlab/progress.py); None: whatever the caller's `reporting` installed."""
        self.progress = progress
        self.source = source
        self.out = Path(out)
        self.threads = threads
        self.verify = verify  # re-hash every reused file, ignoring the hashes remembered in .verified
        with self._reporting(), stage(f"{source.name}: read source"):
            self.source_hash = source.content_hash()
        self.kind = kind_of(source)
        self.gate = gate or gate_for(self.kind)
        self._reference: Any = None

    @property
    def model_dir(self) -> Path:
        return self.out / model_folder_name(self.source)

    def _reporting(self) -> Any:
        """The stages inside go to this converter's callback when it was given one, else the caller's."""
        from contextlib import nullcontext

        return reporting(self.progress) if self.progress is not None else nullcontext()

    def reference(self) -> Any:
        if self._reference is None:
            with self._reporting(), stage(f"{self.source.name}: fp32 reference outputs"):
                self._reference = self.gate.reference(self.source)
        return self._reference

    def convert_unit(self, unit: Unit, force: bool = False) -> UnitOutcome:
        with self._reporting():
            return self._convert_unit(unit, force)

    def _convert_unit(self, unit: Unit, force: bool) -> UnitOutcome:
        if unit.kind != self.kind:
            raise UsageError(f"unit {unit.name} runs {unit.kind} models; {self.source.name} is a {self.kind} model")
        available = unit.availability()
        if not available.ok:
            convertible = unit.conversion_availability()
            if not convertible.ok:
                reason = available.reason
                if convertible.reason != reason:
                    reason += f"; conversion impossible too: {convertible.reason}"
                return UnitOutcome(unit.name, "unavailable", error=reason)
        artifact_dir = self.model_dir / unit.name
        waiting = f"waiting for another process converting {self.source.name} for {unit.name}"
        with unit_lock(self.model_dir, unit.name, waiting):  # a second convert waits, then reuses
            notice = ""
            if not force:
                with stage(f"{self.source.name} {unit.name}: check cached artifact"):
                    cached, notice = _reuse_check(artifact_dir, unit, self.source_hash, self.verify)
                if cached is not None:
                    touch_last_used(artifact_dir)
                    return UnitOutcome(unit.name, "cached", artifact_dir, cached)
                remembered = self._remembered_failure(unit)
                if remembered:
                    return UnitOutcome(unit.name, "failed", error=remembered)
                if notice:
                    log.warning(notice)
            outcome = self._convert_locked(unit, artifact_dir, available)
            outcome.notice = notice
            return outcome

    def _failure_key(self, unit: Unit) -> dict[str, Any]:
        return {"source_hash": self.source_hash, "recipe": unit.recipe, "siliconlab_version": __version__,
                **self.gate.failure_key()}  # fmt: skip

    def _remembered_failure(self, unit: Unit) -> str:
        """A parity failure of this very model + recipe + version, recorded earlier: converting again would take
        minutes to fail the same way (e.g. `load(unit="best")` trying units in turn). `convert --force` retries."""
        path = self.model_dir / f".{unit.name}.parity-failed.json"
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return ""
        if any(record.get(key) != value for key, value in self._failure_key(unit).items()):
            return ""
        retry = f"siliconlab convert {self.source.name} --units {unit.name} --force"
        return f"{record.get('error', 'parity failed')} (remembered from an earlier conversion; `{retry}` retries)"

    def _convert_locked(self, unit: Unit, artifact_dir: Path, available: Availability) -> UnitOutcome:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        unit.shared_dir = self.model_dir / SHARED_FOLDER
        work = Path(tempfile.mkdtemp(dir=self.model_dir, prefix=f".{unit.name}.tmp-"))
        try:
            manifest = self._build(unit, work, runnable=available)
            failure = self.gate.failure(manifest["parity"])
            failed_record = self.model_dir / f".{unit.name}.parity-failed.json"
            if failure:
                write_json_atomic(failed_record, self._failure_key(unit) | {"error": failure})
                return UnitOutcome(unit.name, "failed", None, manifest, failure)
            failed_record.unlink(missing_ok=True)
            if artifact_dir.exists():
                shutil.rmtree(artifact_dir)
            share_tree(work)  # mkdtemp and mkstemp make them private; artifacts are meant to be shared
            work.rename(artifact_dir)
            touch_last_used(artifact_dir)
            return UnitOutcome(unit.name, "converted", artifact_dir, manifest)
        except UsageError:  # bad input (e.g. a tokenizer that does not fit the model) is no unit's failure
            raise
        except Exception as exc:  # one unit failing must not stop the others
            log.debug("conversion of %s failed", unit.name, exc_info=True)
            return UnitOutcome(unit.name, "failed", error=one_line(exc))
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def build_uninstalled(self, unit: Unit, work: Path) -> dict[str, Any]:
        """Build `unit`'s artifact into `work` and gate it, but install nothing whatever its parity: `eval` shows
        a failing unit's real accuracy from it (marked failing), and nothing else can ever load it."""
        with self._reporting():
            return self._build(unit, work, runnable=unit.availability())

    def discard_if_empty(self) -> None:
        """Remove the model folder if it holds nothing but lock files (nothing was ever converted into it)."""
        folder = self.model_dir
        if folder.is_dir() and all(p.is_file() and p.name.endswith(".lock") for p in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)

    def _build(self, unit: Unit, work: Path, runnable: Availability) -> dict[str, Any]:
        reference = self.reference()
        name = f"{self.source.name} {unit.name}"
        with stage(f"{self.source.name}: load fp32 model"):
            model = self.source.load()  # fresh: an exporter may change the model it traces (export_onnx: eager)
        started = time.perf_counter()
        with stage(f"{name}: convert"):
            conversion = unit.convert(model, work)
        seconds = time.perf_counter() - started
        self.gate.save_model_files(model, work)
        structure = unit.check_structure(work, model)
        with stage(f"{name}: converted module parity"):  # most units have none: an instant stage, not shown
            module_parity = self.gate.check_converted(unit, conversion, model, reference)
        executed = None
        if runnable.ok:
            with stage(f"{name}: load for parity"):
                runner = unit.load(work, self.threads)
            executed = executed_precision(runner, unit)
            with stage(f"{name}: parity check"):
                parity = self.gate.check(unit, runner, model, reference)
        else:  # converted here, runs elsewhere: parity is not measured, and says why
            parity = {"passed": None, "reason": runnable.reason, "threshold": unit.cosine_min}
        if module_parity is not None:
            parity["converted_module"] = module_parity
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "unit": unit.name,
            "kind": self.kind,
            "engine": unit.engine,
            "device": unit.device,
            "precision": unit.precision,
            "executed_precision": executed,  # what the engine ran the parity check in, read back where it tells
            "cpu": detect_cpu().summary() if unit.device == "cpu" else None,
            "recipe": unit.recipe,
            "model": self.source.name,
            "model_source": self.source.source,
            "model_spec": self.source.spec or self.source.name,  # resolve() this to re-run parity (verify)
            "source_hash": self.source_hash,
            **self.gate.manifest_fields(model),
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


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, without its class path (the user needs the message;
    `onnxruntime.capi.onnxruntime_pybind11_state.Fail` tells them nothing). The bare class name stands in
    only when the message is empty."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def convert_all(
    source: ModelSource,
    units: list[Unit],
    out: Path,
    threads: int,
    force: bool = False,
    on_done: Callable[[UnitOutcome], None] | None = None,
    verify: bool = False,
) -> list[UnitOutcome]:
    converter = Converter(source, out, threads, verify=verify)
    outcomes = []
    for unit in units:
        try:
            outcome = converter.convert_unit(unit, force=force)
        except UsageError:  # bad input: stop, and leave no folder that holds only our lock files
            converter.discard_if_empty()
            raise
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def executed_precision(runner: Any, unit: Unit) -> str:
    """The arithmetic the loaded engine runs in: read back from the engine where it tells (OpenVINO's compiled
    INFERENCE_PRECISION_HINT), else what the unit declares."""
    return str(getattr(runner, "executed_precision", None) or unit.compute_precision or unit.precision)


def load_artifact(artifact_dir: Path, unit: Unit[RunnerT], threads: int) -> tuple[RunnerT, dict[str, Any]]:
    """Load a converted artifact, turning any failure into one clear line (never a traceback). An artifact whose
    configs ask to run code (edited after conversion: siliconlab never writes one) is refused first."""
    manifest = read_manifest(artifact_dir)
    refuse_remote_code(artifact_dir)
    if manifest["unit"] != unit.name:
        raise SiliconlabError(f"{artifact_dir} holds unit '{manifest['unit']}', not '{unit.name}'")
    try:
        runner = unit.load(artifact_dir, threads)
    except Exception as exc:
        raise SiliconlabError(
            f"artifact {artifact_dir} is corrupt or incomplete ({one_line(exc)}); convert again"
        ) from exc
    touch_last_used(artifact_dir)
    return runner, manifest
