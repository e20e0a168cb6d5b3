"""One fixed signature for every unit: (input_ids, attention_mask) -> the task's outputs.

Pooling lives inside the graph so that an ONNX/OpenVINO/CoreML artifact computes the whole function
(token states and the mean-pooled, L2-normalised sentence embedding), not just the encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from siliconlab.models.base import HEADS, Task


def mean_pool_normalize(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    summed = (states * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return F.normalize(summed / counts, p=2.0, dim=1)


class EncoderWithHead(torch.nn.Module):
    """Calls the HF model with keywords (the TorchScript exporter trips over positional use_cache in transformers 5)."""

    def __init__(self, model: torch.nn.Module, task: Task):
        super().__init__()
        self.model = model
        self.task = task
        self.classifier = HEADS[task].classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        token_type_ids = torch.zeros_like(input_ids)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        if self.classifier:
            return (out.logits,)
        states = out.last_hidden_state
        return states, mean_pool_normalize(states, attention_mask)
