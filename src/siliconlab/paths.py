"""Where siliconlab keeps what it builds: one artifact store, shared by convert, bench, tasks and serve."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def default_cache() -> Path:
    """$SILICONLAB_CACHE, else ~/.cache/siliconlab/artifacts (one folder per model, one per unit inside)."""
    return Path(os.environ.get("SILICONLAB_CACHE", Path.home() / ".cache" / "siliconlab" / "artifacts"))


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask. Reading it means setting it, so a lock keeps two threads from racing."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def shared_mode(directory: bool = False) -> int:
    """The mode open()/mkdir() would give a new file or folder: mkstemp/mkdtemp make them private (0600/0700),
    but artifacts and results are meant to be read by others, like their neighbours."""
    return (0o777 if directory else 0o666) & ~current_umask()


def share_tree(folder: Path) -> None:
    """Give a finished artifact folder, its subfolders and files the shared mode (executables keep their x bits;
    links are left alone). Why: writers that go through mkstemp (torch's safetensors save among them) left
    `torch-cpu-fp32/model.safetensors` 0600 while its neighbours were 0644."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(shared_mode(directory=True))
        else:
            executable = path.stat().st_mode & 0o111
            path.chmod(shared_mode(directory=bool(executable)))


def claim(path: Path) -> Path:
    """Make `path` a new, empty regular file of ours before writing it: whatever stood there (a link planted at a
    temp file's predictable name, a stale file) is removed, never followed, and the file is created exclusively
    (O_EXCL | O_NOFOLLOW). A later open(path, "w") then writes our file; in a sticky folder such as /tmp no one
    else can swap it. (A re-test planted `.out.errors.jsonl.tmp -> victim` and a job overwrote the victim.)"""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    os.close(os.open(path, flags, shared_mode()))
    return path
