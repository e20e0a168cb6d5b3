"""Artifact integrity: the manifest lists every shipped file with its size and sha256, and every reuse checks
every file's content before the artifact is served.

Why content, always: a same-size edit of a file over the old 64 MiB "sizes only" line was served by `load()`
and reported "reused" by `convert`. Why a remembered verdict: hashing reads every byte. Measured on this VM
(page-cached, sha256 at 1.1-1.7 GB/s): minilm's onnxruntime-cpu-fp32 folder (87 MiB) takes 53 ms against
121 ms to load the ONNX session, torch-cpu-fp32 (87 MiB) 78 ms against 37 ms to load it, and a multi-GB
decoder would take seconds on every load. So a file whose hash matched is remembered in `.verified` by
(inode, size, mtime_ns, ctime_ns): any write, rename over, `cp -p` or `touch -d` changes the inode or the
ctime, which user space cannot set back, so the next reuse hashes it again; an unchanged file costs one
stat (~1 us). Files whose ctime is within the last RACY_NS are not remembered: timestamps come from a coarse
clock, and a write in the same tick would leave them equal (git's "racily clean" index entries, the same
problem). `.verified` is as trustworthy as `manifest.json` beside it: whoever can rewrite the one can rewrite
the other; `siliconlab verify` (and `verify=True`) ignores it and re-measures parity.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siliconlab.convert.manifest import MANIFEST, write_json_atomic
from siliconlab.store import LAST_USED

#: Bookkeeping files that live in the artifact folder but are not part of the artifact.
VERIFIED = ".verified"
_NOT_SHIPPED = {MANIFEST, LAST_USED, VERIFIED}

#: A file changed this recently is hashed on every check until it is older (see the module docstring).
RACY_NS = 2 * 10**9


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


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _remembered(folder: Path) -> dict[str, Any]:
    try:
        payload = json.loads((folder / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def check_files(folder: Path, manifest: dict[str, Any], verify: bool = False) -> IntegrityReport:
    """Compare the folder with the manifest's file list: every file's size and sha256. A file unchanged since
    its hash last matched (same inode, size, mtime and ctime, in `.verified`) is not read again, unless `verify`.

    Manifests written before file lists existed (schema 1) cannot be checked: reported as unverifiable,
    which reuse treats as a reason to rebuild.
    """
    records = manifest.get("files")
    if not isinstance(records, dict) or not records:
        return IntegrityReport(
            ["manifest has no file list (written by an older siliconlab): unverifiable"], False, unverifiable=True
        )
    remembered = {} if verify else _remembered(folder)
    verified: dict[str, Any] = {}
    problems = []
    settled_before = time.time_ns() - RACY_NS
    # A file the manifest does not list changes the artifact too: transformers reads e.g. special_tokens_map.json
    # or added_tokens.json from the folder (a re-test swapped [CLS]/[SEP] that way and the artifact was "reused").
    for path in shipped_files(folder):
        name = path.relative_to(folder).as_posix()
        if name not in records:
            problems.append(f"{name}: not in the manifest (added since conversion)")
    for name, record in records.items():
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:  # an edited manifest naming files elsewhere
            problems.append(f"{name}: not a path inside the artifact folder")
            continue
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        identity = _identity(path)
        size, expected = identity[1], int(record["bytes"])
        if size != expected:
            got, want = human_bytes(size), human_bytes(expected)
            if got == want:  # a few bytes off: the rounded sizes would read the same
                got, want = f"{size} bytes", f"{expected} bytes"
            problems.append(f"{name}: size {got}, expected {want}")
            continue
        entry = [*identity, record["sha256"]]
        if remembered.get(name) == entry:
            verified[name] = entry
        elif sha256_of(path) != record["sha256"]:
            problems.append(f"{name}: content changed (sha256 differs, same size)")
        elif _identity(path) == identity and identity[3] < settled_before:  # unchanged while hashed, and settled
            verified[name] = entry
    if not problems and verified != remembered:
        with suppress(OSError):  # a read-only store: every reuse hashes, which is slower, not wrong
            write_json_atomic(folder / VERIFIED, verified)
    return IntegrityReport(problems, hashed=True)
