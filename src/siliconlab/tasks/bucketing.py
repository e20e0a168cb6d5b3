"""Length bucketing: which rows go into which runner call.

Rows of one chunk (a fixed row range) are sorted by token length and cut greedily into batches whose padded
size (rows x longest) stays within a token budget, so short texts are not padded to a long neighbour's length.
The plan depends only on the chunk's lengths and the budget, so a resumed job forms exactly the same batches
as an uninterrupted one (int8 units quantise activations per batch: same batches, same bits).
"""

from __future__ import annotations

#: Padded tokens per runner call: large enough to amortise per-call overhead, small enough to stay in cache-sized
#: activations on a CPU (measured on the 2-core VM: see docs/batch.md).
DEFAULT_TOKENS_PER_BATCH = 8192
#: Rows per chunk: the bucketing window, and the unit of commit (a resumed job redoes at most one chunk).
DEFAULT_CHUNK_ROWS = 4096


def plan_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices into `lengths`, grouped: ascending length, each group's rows x longest <= budget.

    A row longer than the budget on its own still gets a batch of one (it cannot be split).
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # ascending order: the newcomer is the longest of the batch
        if current and (len(current) + 1) * longest > budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def arrival_batches(lengths: list[int], size: int) -> list[list[int]]:
    """What a simple loop does: `size` rows at a time in input order, each batch padded to its own longest."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return [list(range(start, min(start + size, len(lengths)))) for start in range(0, len(lengths), size)]


def padded_tokens(lengths: list[int], batches: list[list[int]]) -> int:
    """Token positions the runner computes (padding included) for a plan."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches if batch)
