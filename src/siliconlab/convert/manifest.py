"""manifest.json: what an artifact is, where it came from, and whether it passed parity."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from siliconlab.errors import SiliconlabError
from siliconlab.paths import current_umask, shared_mode  # noqa: F401 - re-exported
from siliconlab.store import MANIFEST, directory_bytes  # noqa: F401 - re-exported: the store names the file

SCHEMA_VERSION = 2  # 2: "files" (size + sha256 of every shipped file)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file.

    The file gets the umask-respecting mode of an ordinary new file (mkstemp alone would leave it 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.chmod(tmp, shared_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The manifest of an artifact folder, or a one-line error saying what is wrong with the folder."""
    path = artifact_dir / MANIFEST
    if not artifact_dir.is_dir():
        raise SiliconlabError(f"no artifact folder at {artifact_dir}: run `siliconlab convert` first")
    if not path.is_file():
        raise SiliconlabError(f"artifact folder {artifact_dir} has no {MANIFEST}: it is incomplete; convert again")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SiliconlabError(
            f"{path} is corrupt ({exc.__class__.__name__}): delete the folder and convert again"
        ) from None
    if not isinstance(manifest, dict) or "unit" not in manifest or "source_hash" not in manifest:
        raise SiliconlabError(f"{path} is not a siliconlab manifest: delete the folder and convert again")
    return manifest
