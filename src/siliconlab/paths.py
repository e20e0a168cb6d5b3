"""Where siliconlab keeps what it builds: one artifact store, shared by convert, bench, tasks and serve."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache() -> Path:
    """$SILICONLAB_CACHE, else ~/.cache/siliconlab/artifacts (one folder per model, one per unit inside)."""
    return Path(os.environ.get("SILICONLAB_CACHE", Path.home() / ".cache" / "siliconlab" / "artifacts"))
