"""The constants and the pooling that both converted modules share, chosen so the fp16 program stays finite.

`ct.convert(..., compute_precision=FLOAT16)` casts every fp32 constant of the traced graph to fp16 (largest
finite 65504, smallest normal 2**-14 ≈ 6.1e-5). Two kinds of constant break that silently:

* **too large**: `Tensor.clamp(min=x)` with no upper bound is lowered by coremltools' torch frontend to
  `clip(x, alpha, beta=np.finfo(float32).max)`; cast to fp16 the bound becomes +inf (numpy's "overflow
  encountered in cast" warning during conversion). Use `clamp_min` (lowered to `maximum(x, y)`) instead.
* **too small**: 1e-9 or F.normalize's default 1e-12 round to 0 in fp16, so a fully padded row (mask all
  zeros, as the runner produces when it pads a batch up to its bucket) divides 0 by 0 and yields NaN.

The additive attention mask has its own constraint, see MASK_VALUE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Additive attention-mask value for padded keys. It is added to fp16 attention scores, so it must leave
#: headroom: -65504 (fp16's minimum) + any score below about -16 rounds to -inf, and a row whose keys are
#: all padding then turns into softmax(-inf, ..., -inf) = NaN. -1e4 is exact in fp16, leaves ~55000 of
#: headroom against the scores (BERT's are tens at most), and exp(-1e4 + score - max) is still 0 in any
#: precision, so padded keys get exactly zero weight. It is also the value Apple's ml-ane-transformers uses.
MASK_VALUE = -1e4
#: The L2 normalisation floor: an fp16 normal number (1e-12 would round to 0). Real sentence vectors have
#: norms of order 1 or more, so it only matters for an all-zero vector, which it keeps at zero.
NORM_EPS = 1e-4


def pooled_unit_vector(summed: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """summed / counts, L2-normalised along dim 1: mean pooling that a fully padded row survives in fp16.

    counts are token counts (whole numbers), so flooring them at 1 changes nothing for a real row and turns
    the empty row's 0/0 into 0/1. `clamp_min`, not `clamp(min=)`: see the module docstring.
    """
    mean = summed / counts.clamp_min(1.0)
    return F.normalize(mean, p=2.0, dim=1, eps=NORM_EPS)
