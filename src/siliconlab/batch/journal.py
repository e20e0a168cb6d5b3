"""The job's journal: which chunks are committed, so a rerun of the same command resumes.

A chunk is committed by writing its part files under `<out>.parts/` (temp file, fsync, rename) and then the
journal (temp file, rename). A crash between the two leaves a part the journal does not name: it is redone,
identically, because batches are formed from the chunk's own rows. The journal holds a fingerprint of the
command and the input (path, size, mtime); a journal from another command or input is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from siliconlab.convert.manifest import write_json_atomic
from siliconlab.errors import UsageError

VERSION = 1


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def errors_path(out: Path) -> Path:
    return out.with_name(out.name + ".errors.jsonl")


def fingerprint(command: dict[str, Any], input_path: Path) -> str:
    """What must match for a resume: the command's options and the input file as it was (path, size, mtime)."""
    stat = input_path.stat()
    identity = {
        "command": command,
        "input": str(input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class Journal:
    """`<out>.parts/journal.json`: fingerprint, the unit the job runs on, and the committed chunks."""

    def __init__(self, folder: Path, state: dict[str, Any]):
        self.folder = folder
        self.path = folder / "journal.json"
        self.state = state

    @classmethod
    def open(cls, out: Path, print_: str, command: dict[str, Any]) -> Journal | None:
        """The journal of an unfinished run of this very job, or None; another job's journal is refused."""
        folder = parts_dir(out)
        path = folder / "journal.json"
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            raise UsageError(f"{path} is unreadable: pass --overwrite to start the job over") from None
        if state.get("version") != VERSION or state.get("fingerprint") != print_:
            was = state.get("command", {})
            raise UsageError(
                f"{folder} holds an unfinished job from a different command or input "
                f"(model {was.get('model')!r}, input {was.get('input')!r}); rerun that exact command to finish it, "
                "or pass --overwrite to discard it and start over"
            )
        return cls(folder, state)

    @classmethod
    def create(cls, out: Path, print_: str, command: dict[str, Any], unit: str) -> Journal:
        folder = parts_dir(out)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        journal = cls(folder, {"version": VERSION, "fingerprint": print_, "command": command, "unit": unit, "done": {}})
        journal.save()
        return journal

    def save(self) -> None:
        write_json_atomic(self.path, self.state)

    @property
    def unit(self) -> str:
        return self.state["unit"]

    @property
    def done(self) -> dict[int, dict[str, int]]:
        return {int(k): v for k, v in self.state["done"].items()}

    def part(self, index: int, kind: str) -> Path:
        return self.folder / f"part-{index:07d}.{kind}"

    def commit(self, index: int, rows: int, kept: int, errors: int) -> None:
        self.state["done"][str(index)] = {"rows": rows, "kept": kept, "errors": errors}
        self.save()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
