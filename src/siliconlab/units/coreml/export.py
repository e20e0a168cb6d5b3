"""PyTorch -> one fp16 Core ML ML Program (.mlpackage), converted once per model and variant, shared by units.

Flexible sequence length: **EnumeratedShapes**, not RangeDim. The Neural Engine compiles a model for fixed
shapes; a RangeDim input is often run on the CPU/GPU instead (or re-planned per call), while each enumerated
shape is compiled ahead and eligible for the ANE. So the package lists every (batch, seq) pair in
BATCH_BUCKETS × SEQ_BUCKETS (capped at the model's maximum length) and the runner pads a request up to the
nearest one — padded keys are masked out and padded rows/positions sliced off, so padding does not change
the result, only costs the compute of the bucket. Two inputs with enumerated shapes need the iOS 18 /
macOS 15 deployment target (coremltools refuses several enumerated inputs below it), hence macOS 15+.

The traced module takes int32 input_ids and attention_mask (B, S) and returns the documented outputs:
token_states (B, S, hidden) and sentence_embedding (B, hidden), or logits (B, labels) — whichever encoder
is inside (the stock Hugging Face BERT through a tracing wrapper, or the ANE rewrite).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siliconlab.models.base import HEADS, HfModule, LoadedModel
from siliconlab.paths import shared_mode
from siliconlab.units.coreml.fp16 import MASK_VALUE, pooled_unit_vector

PACKAGE = "model.mlpackage"
BATCH_BUCKETS = (1, 8, 32)
SEQ_BUCKETS = (16, 32, 64, 128, 256, 384, 512)
#: Part of the shared-package key: bump when the recipe below changes.
#: 3: no constant overflows fp16 (the pooling's unbounded clamp became +inf) or underflows to a 0/0.
EXPORT_RECIPE = "3"


def enumerated_shapes(max_length: int) -> list[tuple[int, int]]:
    seqs = [s for s in SEQ_BUCKETS if s < max_length] + [max_length]
    return [(batch, seq) for batch in BATCH_BUCKETS for seq in seqs]


class CoreMLBertWrapper(torch.nn.Module):
    """The stock HF BERT in a form coremltools can trace: explicit position ids, zero token types, and a 4-D
    additive float mask instead of the int mask HF would expand with ops the converter rejects.

    The mask and the pooling follow units/coreml/fp16.py so the fp16 program stays finite; the mask takes the
    model's dtype so the module also runs in fp16 in PyTorch (how the tests check that arithmetic)."""

    def __init__(self, model: HfModule, task: str):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ids = input_ids.long()
        positions = torch.arange(ids.shape[1], dtype=ids.dtype).unsqueeze(0).expand_as(ids)
        mask = attention_mask.to(next(self.model.parameters()).dtype)
        additive = ((1.0 - mask) * MASK_VALUE)[:, None, None, :]
        mean_head = getattr(self.model, "pooling", None) == "mean"  # siliconlab's head (models/heads.py)
        encoder = self.model.bert if mean_head else self.model
        out = encoder(
            input_ids=ids, attention_mask=additive, token_type_ids=torch.zeros_like(ids), position_ids=positions
        )
        if HEADS[self.task].classifier and not mean_head:
            return (out.logits,)
        states = out.last_hidden_state
        weights = mask.unsqueeze(-1)  # (B, S, 1)
        embedding = pooled_unit_vector((states * weights).sum(dim=1), weights.sum(dim=1))
        return (self.model.classifier(embedding),) if mean_head else (states, embedding)


def build_module(model: LoadedModel, ane_optimized: bool, weights: str = "fp16") -> torch.nn.Module:
    """The fp32 PyTorch module that gets converted: the ANE rewrite or the stock encoder's tracing wrapper.

    weights="int8": Linear/Conv2d weights are quantized per output channel to symmetric int8 in PyTorch
    (coremltools.optimize.torch PostTrainingQuantizer, data-free); ct.convert turns the recorded scales into
    constexpr dequantize ops. Quantizing before conversion (rather than the Core ML model afterwards with
    coremltools.optimize.coreml) has two merits: it keeps the enumerated-shape ANE graph intact (re-reading
    a saved package into MIL fails type inference on its einsums in coremltools 9.0), and the quantized
    module runs in PyTorch here, so the int8 weights' effect on parity is measured on Linux too.
    """
    if ane_optimized:
        from siliconlab.units.coreml.ane_bert import AneBert

        module: torch.nn.Module = AneBert(model.model, model.task).eval()
    else:
        module = CoreMLBertWrapper(model.model, model.task).eval()
    if weights == "int8":
        from coremltools.optimize.torch.quantization import PostTrainingQuantizer, PostTrainingQuantizerConfig

        config = PostTrainingQuantizerConfig.from_dict(
            {"global_config": {"weight_dtype": "int8", "granularity": "per_channel"}}
        )
        module = PostTrainingQuantizer(module, config).compress().eval()
    return module


def _convert(module: torch.nn.Module, model: LoadedModel) -> Any:
    import coremltools as ct

    shapes = enumerated_shapes(model.max_length)
    # Trace at batch 2: a batch-1 trace lets broadcasts specialise and the einsum shapes then clash.
    example = torch.full((2, 16), 1000, dtype=torch.int32), torch.ones(2, 16, dtype=torch.int32)
    with torch.no_grad():
        traced = torch.jit.trace(module, example)
    flexible = ct.EnumeratedShapes(shapes=shapes, default=shapes[0])
    inputs = [
        ct.TensorType(name="input_ids", shape=flexible, dtype=np.int32),
        ct.TensorType(name="attention_mask", shape=flexible, dtype=np.int32),
    ]
    mlmodel = ct.convert(
        traced,
        inputs=inputs,
        outputs=[ct.TensorType(name=name) for name in model.output_names],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=ct.target.macOS15,
    )
    mlmodel.short_description = f"siliconlab {model.name}: (input_ids, attention_mask) -> {model.output_names}"
    return mlmodel


def package_key(model: LoadedModel, ane_optimized: bool, weights: str) -> str:
    import coremltools

    parts = [model.content_hash, EXPORT_RECIPE, coremltools.__version__, f"ane={ane_optimized}", weights]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link a package into an artifact folder (one copy on disk, each folder self-contained)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link)


def shared_package(
    model: LoadedModel, module: torch.nn.Module, ane_optimized: bool, weights: str, shared_dir: Path | None
) -> tuple[Path, dict[str, Any]]:
    """The package for (model, variant, weights): converted once, reused by every unit that asks again.

    Returns its path and facts for the manifest (whether it was reused, seconds spent converting it).
    """
    key = package_key(model, ane_optimized, weights)
    root = Path(shared_dir) if shared_dir is not None else Path(tempfile.mkdtemp(prefix="siliconlab-coreml-"))
    entry = root / f"coreml-{key}"
    package = entry / PACKAGE
    if (entry / "done.json").is_file() and package.is_dir():
        facts = json.loads((entry / "done.json").read_text())
        return package, {**facts, "reused_shared_package": True}
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".coreml-{key}.tmp-"))
    try:
        started = time.perf_counter()
        _convert(module, model).save(str(work / PACKAGE))
        facts = {"coreml_convert_seconds": round(time.perf_counter() - started, 3)}
        facts |= {"package_key": key, "ane_optimized": ane_optimized, "weights": weights}
        (work / "done.json").write_text(json.dumps(facts))
        if entry.exists():
            shutil.rmtree(entry)
        work.chmod(shared_mode(directory=True))  # mkdtemp makes it private; artifacts are meant to be shared
        work.rename(entry)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return package, {**facts, "reused_shared_package": False}


def place_package(package: Path, out_dir: Path) -> Path:
    destination = out_dir / PACKAGE
    _link_tree(package, destination)
    return destination
