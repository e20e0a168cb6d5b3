"""Artifact integrity: the manifest lists every shipped file with its size and sha256, and reuse checks them.

Why: a truncated or deleted model file used to be reused as good (same inputs, same manifest), and only
`--force` repaired it. Now sizes are checked on every reuse; contents (sha256) when the folder is small enough
to hash cheaply (< HASH_ALWAYS_BELOW bytes in all) or when asked (`verify=True`, `--verify`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siliconlab.convert.manifest import MANIFEST

#: Folders smaller than this are hashed on every reuse; larger ones only when asked (a read of ~1 s per 1 GB).
HASH_ALWAYS_BELOW = 64 * 2**20

#: Bookkeeping files that live in the artifact folder but are not part of the artifact.
LAST_USED = ".last_used"
_NOT_SHIPPED = {MANIFEST, LAST_USED}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_files(folder: Path) -> list[Path]:
    """Every file of the artifact (links followed), without the manifest and bookkeeping files."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in _NOT_SHIPPED)


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {bytes, sha256}} for the manifest: what the folder must still hold when reused."""
    return {
        path.relative_to(folder).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
        for path in shipped_files(folder)
    }


def human_bytes(size: int) -> str:
    if size < 2**20:
        return f"{size / 2**10:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"


@dataclass
class IntegrityReport:
    """What is wrong with an artifact folder compared with its manifest; `ok` when nothing is."""

    problems: list[str]
    hashed: bool
    unverifiable: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return "; ".join(self.problems)


def check_files(folder: Path, manifest: dict[str, Any], verify: bool = False) -> IntegrityReport:
    """Compare the folder with the manifest's file list: sizes always, sha256 when cheap or when `verify`.

    Manifests written before file lists existed (schema 1) cannot be checked: reported as unverifiable,
    which reuse treats as a reason to rebuild.
    """
    records = manifest.get("files")
    if not isinstance(records, dict) or not records:
        return IntegrityReport(
            ["manifest has no file list (written by an older siliconlab): unverifiable"], False, unverifiable=True
        )
    total = sum(int(record.get("bytes", 0)) for record in records.values())
    hashed = verify or total < HASH_ALWAYS_BELOW
    problems = []
    for name, record in records.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        size, expected = path.stat().st_size, int(record["bytes"])
        if size != expected:
            got, want = human_bytes(size), human_bytes(expected)
            if got == want:  # a few bytes off: the rounded sizes would read the same
                got, want = f"{size} bytes", f"{expected} bytes"
            problems.append(f"{name}: size {got}, expected {want}")
        elif hashed and sha256_of(path) != record["sha256"]:
            problems.append(f"{name}: content changed (sha256 differs, same size)")
    return IntegrityReport(problems, hashed)
