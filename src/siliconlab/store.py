"""The artifact store on disk (OUT/<model>/<unit>/): conversion locks, last-use stamps, listing and pruning.

It sits at the bottom (beside paths.py) because more than the converter builds into it: a model source such as
smollm2-chat converts its GGUF file into the store under the same lock.

Locks are `fcntl.flock` on a lock file in the model folder, one per unit: a second convert of the same
model+unit waits for the first and then reuses its artifact instead of converting again. flock is POSIX-only
(Linux, macOS); where fcntl is missing (Windows) converts run unlocked, as before. Locks on network file
systems (NFS) are only as good as the server's flock support.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from siliconlab.errors import UsageError
from siliconlab.log import log

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Per-model folder where units of one engine share work (e.g. one CoreML package for four compute units).
SHARED_FOLDER = ".shared"
#: What marks a finished artifact folder (convert/manifest.py writes and reads it).
MANIFEST = "manifest.json"
#: Touched on every load, so `cache prune` can drop what was not used for a while.
LAST_USED = ".last_used"


def directory_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def lock_path(model_dir: Path, unit: str) -> Path:
    return model_dir / f".{unit}.lock"


@contextmanager
def unit_lock(model_dir: Path, unit: str, wait_message: str = "") -> Iterator[None]:
    """Hold the model+unit lock; if another process holds it, say so once and wait for it.

    A folder we cannot write (a read-only shipped cache) cannot hold a lock, and there is nothing to
    convert into either: the caller goes on unlocked.
    """
    if fcntl is None:
        yield
        return
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path(model_dir, unit), "a")  # noqa: SIM115 - held open for the lock's lifetime
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(wait_message or f"waiting for another process converting {model_dir.name}/{unit}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def touch_last_used(artifact_dir: Path) -> None:
    """Stamp the artifact as used now (for `cache ls` and `cache prune --older-than`); read-only stores skip it."""
    with suppress(OSError):
        (artifact_dir / LAST_USED).touch()


@dataclass
class CacheEntry:
    model: str
    unit: str
    path: Path
    bytes: int
    last_used: float  # epoch seconds: the .last_used stamp, else the manifest's (conversion) time
    complete: bool  # False: no manifest (an interrupted or foreign folder)

    @property
    def age_days(self) -> float:
        return max(0.0, (time.time() - self.last_used) / 86400)


def _entry(model_dir: Path, unit_dir: Path) -> CacheEntry:
    manifest = unit_dir / MANIFEST
    stamp = unit_dir / LAST_USED
    source = stamp if stamp.is_file() else manifest if manifest.is_file() else unit_dir
    return CacheEntry(
        model=model_dir.name,
        unit=unit_dir.name,
        path=unit_dir,
        bytes=directory_bytes(unit_dir),
        last_used=source.stat().st_mtime,
        complete=manifest.is_file(),
    )


def list_cache(root: Path) -> list[CacheEntry]:
    """Every unit folder under root (OUT/<model>/<unit>/), sorted by model then unit; dot folders are internal."""
    root = Path(root)
    if not root.exists():
        return []
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    entries = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for unit_dir in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            entries.append(_entry(model_dir, unit_dir))
    return entries + _sources(root)


#: Model sources built into the store before any unit converts them (smollm2-chat's fp32 copy of its GGUF).
SOURCES = ".sources"


def _sources(root: Path) -> list[CacheEntry]:
    """`.sources/<model>-<recipe>-<size>/`: listed as the model's "source" so its bytes are not hidden (SmolLM2's
    fp32 copy is 514 MB); complete once its config.json is there."""
    folder = root / SOURCES
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        model = path.name.split("-gguf-")[0] if "-gguf-" in path.name else path.name
        found.append(CacheEntry(model, "source", path, directory_bytes(path), path.stat().st_mtime,
                                (path / "config.json").is_file()))  # fmt: skip
    return found


def select_for_prune(
    entries: list[CacheEntry],
    older_than_days: float | None = None,
    model: str | None = None,
    unit: str | None = None,
    everything: bool = False,
) -> list[CacheEntry]:
    """The entries matching every filter given; with no filter at all, nothing unless `everything`."""
    if older_than_days is None and model is None and unit is None and not everything:
        raise UsageError("say what to prune: --older-than DAYS, --model M, --unit U, or --all")
    if older_than_days is not None and older_than_days < 0:
        raise UsageError(f"--older-than takes a number of days >= 0, got {older_than_days}")
    model_key = model.replace("/", "--") if model else None
    return [
        entry
        for entry in entries
        if (older_than_days is None or entry.age_days > older_than_days)
        and (model_key is None or entry.model == model_key)
        and (unit is None or entry.unit == unit)
    ]


def prune(root: Path, entries: list[CacheEntry], dry_run: bool = False) -> int:
    """Delete the entries' folders (each under its conversion lock); returns the bytes freed (or that would be).

    A model folder left with no unit is removed whole, with its shared work and lock files (their bytes are
    counted when really deleted, not in a dry run).
    """
    freed = 0
    for entry in entries:
        freed += entry.bytes
        if dry_run:
            continue
        with unit_lock(entry.path.parent, entry.path.name):  # the unit's name; a source folder's own name
            shutil.rmtree(entry.path, ignore_errors=True)
    if not dry_run:
        for model_dir in {entry.path.parent for entry in entries if entry.path.parent.name != SOURCES}:
            if model_dir.is_dir() and not any(p.is_dir() and not p.name.startswith(".") for p in model_dir.iterdir()):
                freed += directory_bytes(model_dir)
                shutil.rmtree(model_dir, ignore_errors=True)
    return freed
