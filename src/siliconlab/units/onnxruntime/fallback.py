"""A classifier's int8 answer, re-checked in fp32 where int8 error could have flipped the label.

Measured on `sentiment` (AMD EPYC Zen 5, 2 shared cores, 300 agreement texts judged one at a time): no int8
recipe reached the 99 % label gate. Plain per-channel int8 agreed on 97.7-98.0 %; SmoothQuant α=0.7 98.0 %;
the shipped recipe (greedy fp32 nodes, fp32 head, bias correction) 98.3 %; even every FFN down-projection in
fp32 98.3 %. The logit margin moves by 0.07-0.24 on average (up to 0.3-1.2), while 5 % of real texts lie
within 0.2 of the decision boundary (their median margin is 1.7). So every text is answered in int8, and only
one whose int8 margin (top logit minus the runner-up) is below `margin` is answered again by the fp32 graph:
a label flips only where int8 moved a logit difference by more than the margin itself. The margin is the
worst such move on the task's training texts (never the judged ones), times 1.5 for the texts not seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.units.base import CpuRunnerMixin

if TYPE_CHECKING:
    import numpy as np

FALLBACK = "fallback.onnx"
FALLBACK_MARGIN = "fallback.json"
#: The worst logit-difference move on calibration texts, times this: the texts judged are other texts.
SAFETY = 1.5


def logit_move(quantized: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per text, the largest change int8 made to any difference of two logits (what decides a label)."""
    delta = quantized - reference
    return delta.max(axis=1) - delta.min(axis=1)


def top_margin(logits: np.ndarray) -> np.ndarray:
    """Per text, the top logit minus the runner-up: how far the answer is from flipping."""
    import numpy as np

    ordered = np.sort(logits, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def choose_margin(quantized: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """The fallback margin from calibration logits, and what it would send to fp32 there (for the manifest)."""
    moves = logit_move(quantized, reference)
    margin = float(moves.max()) * SAFETY
    share = float((top_margin(quantized) < margin).mean())
    return {"margin": round(margin, 6), "worst_logit_move": round(float(moves.max()), 6),
            "mean_logit_move": round(float(moves.mean()), 6), "calibration_share": round(share, 4),
            "calibration_texts": len(moves)}  # fmt: skip


class FallbackRunner(CpuRunnerMixin):
    """Runs the int8 graph; rows whose int8 margin is under `margin` are run again on the fp32 graph."""

    def __init__(self, quantized_path: Path, fp32_path: Path, threads: int, margin: float):
        from siliconlab.units.onnxruntime.cpu import OrtRunner

        # Neither session spins while idle: with ORT's default, int8's workers spun on the cores the fp32 re-check
        # needed (2 cores: the pair ran at 0.8-1.25x fp32's speed; without spinning 3.4-5.5x, noisy shared host).
        self.quantized = OrtRunner(quantized_path, threads, spinning=False)
        self.fp32 = OrtRunner(fp32_path, threads, spinning=False)
        self.margin = margin
        self.output_names = self.quantized.output_names
        self.tokens_per_call = 1  # dynamic int8: each text alone (cpu_int8.py)
        self.answered = self.rechecked = 0  # texts answered, and how many of them fp32 answered again

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        out = self.quantized.run(input_ids, attention_mask)
        logits = np.array(out["logits"], copy=True)
        rows = np.flatnonzero(top_margin(logits) < self.margin)
        if rows.size:
            logits[rows] = self.fp32.run(
                np.ascontiguousarray(input_ids[rows]), np.ascontiguousarray(attention_mask[rows])
            )["logits"]
        self.answered += len(logits)
        self.rechecked += int(rows.size)
        return {**out, "logits": logits}
