"""Model folders never run their own code: `trust_remote_code` is always off, and a folder asking for it is refused.

Why: a folder whose config names classes in its own Python files (`auto_map`) made transformers ask "Do you
wish to run the custom code? [y/N]" on a terminal, and a `y` (or a `y` waiting on stdin) imported the folder's
modules. Every transformers `from_pretrained` siliconlab makes passes `trust_remote_code=False`, and the folder is
refused before transformers reads it, so no prompt can appear and nothing from the folder is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from siliconlab.errors import UsageError

#: The files in which transformers looks for `auto_map` (classes to import from the folder's own code).
_CONFIG_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def refuse_remote_code(path: Path) -> None:
    """Raise a one-line UsageError if any config of the folder maps classes to the folder's own code."""
    for name in _CONFIG_FILES:
        try:
            payload = json.loads((Path(path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # missing or unreadable: the source's own checks say what is wrong with config.json
        mapped = payload.get("auto_map") if isinstance(payload, dict) else None
        if mapped:
            classes = ", ".join(sorted(mapped)) if isinstance(mapped, dict) else str(mapped)[:80]
            raise UsageError(
                f"'{path}' asks to run its own Python code ({name} has auto_map: {classes}); siliconlab never runs "
                "code from a model folder: use a model whose architecture transformers itself provides"
            )
