"""The fp32 PyTorch reference: the runner the parity gate compares every unit against, and the baseline unit runs.

It lives with the models (the bottom layer) so that both `convert/` (parity) and `units/torch/` (the
baseline unit) can use it without one reaching sideways into the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from siliconlab.models.base import CPU_TOKENS_PER_CALL, OUTPUT_NAMES, HfModule
from siliconlab.models.hf_directory import load_hf_model, task_of
from siliconlab.models.wrapper import EncoderWithHead


class TorchRunner:
    """Runs any (input_ids, attention_mask) -> outputs PyTorch module: the baseline, or a rewrite under check."""

    def __init__(self, module: HfModule, device: str = "cpu", output_names: tuple[str, ...] | None = None):
        self.module = module.eval()
        self.device = device
        self.output_names = output_names or OUTPUT_NAMES[module.task]
        #: padded tokens per pipeline call on a CPU (models/base.py); a GPU takes whole batches
        self.tokens_per_call = CPU_TOKENS_PER_CALL if device == "cpu" else None

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.module(
                torch.from_numpy(input_ids).to(self.device), torch.from_numpy(attention_mask).to(self.device)
            )
        return {name: out.float().cpu().numpy() for name, out in zip(self.output_names, outputs)}

    def synchronize(self) -> None:
        """run() already returns host arrays, so there is nothing left to wait for."""
        return None


def load_hf_module(artifact_dir: Path) -> EncoderWithHead:
    """A saved Hugging Face folder as the fp32, SDPA-attention module a user would run."""
    model = load_hf_model(artifact_dir)
    return EncoderWithHead(model, task_of(model.config)).eval()
