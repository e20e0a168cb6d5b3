"""Shared ONNX export for the ONNX Runtime and OpenVINO units.

ORT's BERT optimizer fuses Attention/EmbedLayerNorm only on graphs from the TorchScript exporter with
eager attention; the dynamo exporter or SDPA attention leave it fusing only SkipLayerNorm/BiasGelu. The fusion
counts land in each manifest (graph.fused_ops); tests/models/test_minilm.py holds MiniLM to 6 Attention nodes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from siliconlab.models.base import LoadedModel
from siliconlab.models.wrapper import EncoderWithHead

OPSET = 17


def export_onnx(model: LoadedModel, path: Path) -> Path:
    """Export (input_ids, attention_mask) -> outputs with dynamic batch and sequence axes."""
    module = model.model
    if hasattr(module, "set_attn_implementation"):
        module.set_attn_implementation("eager")
    wrapper = EncoderWithHead(module, model.task).eval()
    sample_ids = torch.ones((2, 8), dtype=torch.int64)
    sample_mask = torch.ones((2, 8), dtype=torch.int64)
    dynamic_axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    for name in model.output_names:
        dynamic_axes[name] = {0: "batch", 1: "seq"} if name == "token_states" else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (sample_ids, sample_mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=list(model.output_names),
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return path
