"""Verify a shipped artifact folder: its files against the manifest, and parity again where the unit runs here.

Why: an artifact copied to another machine (or left in a cache for months) may be truncated, edited or
incomplete; `siliconlab verify DIR` says so before a benchmark or a deployment trusts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.convert.integrity import check_files
from siliconlab.convert.manifest import MANIFEST, read_manifest
from siliconlab.errors import SiliconlabError, UsageError

if TYPE_CHECKING:
    from siliconlab.models.kinds import Kind


@dataclass
class VerifyResult:
    path: Path
    unit: str
    files: str  # "ok (N files, sha256)" or what is wrong
    parity: str  # the re-measured figures, or why parity was not re-run
    defects: list[str]

    @property
    def ok(self) -> bool:
        return not self.defects


def find_unit_folders(folder: Path) -> list[Path]:
    """A unit folder itself, or the unit folders of a model folder, or of every model in an output root."""
    folder = Path(folder)
    if not folder.exists():
        raise UsageError(f"no such directory: {folder}")
    if not folder.is_dir():
        raise UsageError(f"not a directory: {folder}")
    if (folder / MANIFEST).is_file():
        return [folder]
    for pattern in (f"*/{MANIFEST}", f"*/*/{MANIFEST}"):
        found = sorted(
            p.parent for p in folder.glob(pattern) if not any(part.startswith(".") for part in p.parts[-3:-1])
        )
        if found:
            return found
    raise UsageError(f"no converted artifact under {folder} (no {MANIFEST} in it, its folders or theirs)")


def _reference_source(manifest: dict[str, Any]) -> tuple[Any, str]:
    """The fp32 model the artifact was converted from, if it can be found here unchanged; else (None, why)."""
    from siliconlab.models import resolve

    spec = manifest.get("model_spec") or manifest.get("model", "")
    try:
        source = resolve(spec)
    except SiliconlabError as exc:
        return None, f"skipped: source model '{spec}' is not available here ({exc})"
    if source.content_hash() != manifest.get("source_hash"):
        return None, f"skipped: source model '{spec}' here differs from the one converted"
    return source, ""


def artifact_kind(folder: Path, manifest: dict[str, Any]) -> Kind:
    """The model kind an artifact was converted for: its manifest says so (since the one converter); older
    generation artifacts are told apart by the config.json every one of them carries."""
    import json

    from siliconlab.models.kinds import KINDS, generation_kind

    if manifest.get("kind") in KINDS:
        return manifest["kind"]
    if manifest.get("task") != "generation":
        return "encoder"
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    return generation_kind(config if isinstance(config, dict) else {})


def _parity(folder: Path, manifest: dict[str, Any], threads: int) -> tuple[str, list[str]]:
    from siliconlab.convert.kinds import gate_for
    from siliconlab.convert.pipeline import one_line
    from siliconlab.units import registry

    kind = artifact_kind(folder, manifest)
    try:
        unit = registry.get(kind, manifest["unit"])
    except SiliconlabError:
        return f"skipped: unit '{manifest['unit']}' is unknown to this siliconlab", []
    available = unit.availability()
    if not available.ok:
        return f"skipped: the unit does not run here ({available.reason})", []
    source, why = _reference_source(manifest)
    if source is None:
        return why, []
    gate = gate_for(kind)
    threshold = float((manifest.get("parity") or {}).get("threshold") or unit.cosine_min)
    try:
        reference = gate.reference(source)
        model = source.load()
        runner = unit.load(folder, threads)
        parity = gate.check(unit, runner, model, reference, threshold)
    except Exception as exc:
        return f"could not run: {one_line(exc)}", [f"parity could not run: {one_line(exc)}"]
    failure = gate.failure(parity)
    return gate.summary(parity), [failure] if failure else []


def verify_folder(folder: Path, threads: int, parity: bool = True) -> VerifyResult:
    """Files (always hashed) and, unless `parity=False` or a file is already wrong, parity re-measured."""
    try:
        manifest = read_manifest(folder)
    except SiliconlabError as exc:
        return VerifyResult(folder, folder.name, str(exc), "not run", [str(exc)])
    integrity = check_files(folder, manifest, verify=True)
    if not integrity.ok:
        return VerifyResult(
            folder, manifest["unit"], integrity.summary(), "not run: files are wrong", integrity.problems
        )
    files = f"ok ({len(manifest['files'])} files, sha256 checked)"
    if not parity:
        return VerifyResult(folder, manifest["unit"], files, "skipped (--no-parity)", [])
    summary, defects = _parity(folder, manifest, threads)
    return VerifyResult(folder, manifest["unit"], files, summary, defects)
