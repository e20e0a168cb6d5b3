"""Tasks: answers instead of tensors. `load(name, unit)` returns a pipeline with the methods its task has:
`encode` (embeddings), `classify` (sentiment, spam, your classifier), `reply` (chat).

Nothing heavy is imported until a pipeline loads.
"""

from __future__ import annotations

from siliconlab.tasks.loader import TASK_MODELS, load

__all__ = ["TASK_MODELS", "load"]
