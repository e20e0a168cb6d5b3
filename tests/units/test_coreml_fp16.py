"""The CoreML packages are fp16 programs: no constant may overflow to ±inf, and the arithmetic must stay finite.

Core ML prediction needs macOS, so the fp16 arithmetic is checked by running the very module handed to
ct.convert in fp16 in PyTorch (CPU), with every submodule's output and every aten op's result watched for
inf/NaN, on the inputs that stress it: a padded batch of long texts with one row fully masked out (the runner
pads batches up to their bucket with such rows). Negative controls show each check fails on the defects it
exists for: an unbounded clamp (whose fp32-max bound became +inf), a mask of -65504 (which overflows when
added to fp16 scores), a 1e-9 pooling floor (0 in fp16, so the empty row divides 0 by 0).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from siliconlab.data import parity_texts
from siliconlab.models import resolve
from siliconlab.models.base import LoadedModel
from siliconlab.models.minilm import minilm_directory

ct = pytest.importorskip("coremltools", reason="coremltools is not installed (pip install -e '.[apple]')")

from siliconlab.units.coreml import ane_bert, export  # noqa: E402  (needs coremltools' presence checked first)
from siliconlab.units.coreml.structure import inspect_package, nonfinite_constants  # noqa: E402

SEQ = 256
#: Query/key weights of this std make attention logits reach tens, as in trained BERTs (random init gives ~0.01,
#: which would hide a mask that overflows only when added to a sufficiently negative score).
QK_STD = 0.8


@pytest.fixture(scope="module")
def tiny_long_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random BERT (hidden 32, 2 layers) with the minilm tokenizer's vocabulary and 256 positions."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_directory())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=SEQ,
    )
    torch.manual_seed(13)
    model = BertModel(config).eval()
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.attention.self.query.weight.normal_(0.0, QK_STD)
            layer.attention.self.key.weight.normal_(0.0, QK_STD)
    path = tmp_path_factory.mktemp("tiny-long-bert")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def _load(path: Path, attn_implementation: str = "sdpa") -> LoadedModel:
    return resolve(str(path)).load(attn_implementation=attn_implementation)


def _convert_recording_warnings(model: LoadedModel, ane_optimized: bool, out: Path) -> tuple[Path, list[str]]:
    """Convert and save as the units do; also return every warning message the conversion emitted."""
    module = export.build_module(model, ane_optimized)
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", invalid="warn"):
        warnings.simplefilter("always")
        package, _ = export.shared_package(model, module, ane_optimized, "fp16", out)
    return package, [str(w.message) for w in caught]


# ---- (a) the converted program: constants and conversion warnings ------------------------------------------


@pytest.mark.parametrize("ane_optimized", [False, True], ids=["stock", "ane"])
def test_conversion_has_no_overflow_warning_and_only_finite_constants(
    ane_optimized: bool, tiny_long_bert: Path, tmp_path: Path
):
    model = _load(tiny_long_bert)
    package, messages = _convert_recording_warnings(model, ane_optimized, tmp_path)
    assert not [m for m in messages if "overflow" in m], messages
    assert nonfinite_constants(package) == []
    facts = inspect_package(package, model, export.enumerated_shapes(model.max_length))
    assert facts["nonfinite_constants"] == 0 and facts["compute_precision"] == "float16"


class _ClampedMean(torch.nn.Module):
    """clamp with only a lower bound: coremltools fills in fp32's max as the upper one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0.5).mean(dim=1)


def test_the_checks_catch_a_constant_that_overflows_fp16(tmp_path: Path):
    traced = torch.jit.trace(_ClampedMean().eval(), torch.ones(2, 4))
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn"):
        warnings.simplefilter("always")
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name="x", shape=(2, 4))],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.macOS15,
        )
    assert any("overflow encountered in cast" in str(w.message) for w in caught)
    mlmodel.save(str(tmp_path / "clamp.mlpackage"))
    assert nonfinite_constants(tmp_path / "clamp.mlpackage")


# ---- (b) the arithmetic: the converted module in fp16 ----------------------------------------------------------


class _NonFiniteWatch(TorchDispatchMode):
    """Records every aten op whose floating-point result holds an inf or NaN (not only module outputs:
    the mask is added to the scores inside a forward, where no hook sees it)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.is_floating_point() and not torch.isfinite(leaf).all():
                self.ops.append(str(func))
                break
        return out


def _padded_long_batch(model: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Long text at full length, shorter ones padded, and a last row with no valid token at all."""
    texts = parity_texts()
    batch = model.tokenizer(
        [texts[-1], texts[3], texts[0], texts[1]],
        padding="max_length",
        truncation=True,
        max_length=SEQ,
        return_tensors="pt",
    )
    ids, mask = batch["input_ids"].to(torch.int32), batch["attention_mask"].to(torch.int32)
    assert int(mask[0].sum()) >= 128, "the first text must be long"
    mask[-1] = 0
    return ids, mask


def _nonfinite_in_fp16(module: torch.nn.Module, model: LoadedModel) -> list[str]:
    """Run the module in fp16 on the stress batch; name every submodule output, aten op or final output
    that was not finite."""
    module = module.half().eval()
    found: list[str] = []

    def hook(name: str):
        def check(_module, _inputs, output) -> None:
            leaves = [t for t in pytree.tree_leaves(output) if isinstance(t, torch.Tensor) and t.is_floating_point()]
            if any(not torch.isfinite(t).all() for t in leaves):
                found.append(f"module {name or '<root>'}")

        return check

    handles = [sub.register_forward_hook(hook(name)) for name, sub in module.named_modules()]
    watch = _NonFiniteWatch()
    try:
        with torch.inference_mode(), watch:
            outputs = module(*_padded_long_batch(model))
    finally:
        for handle in handles:
            handle.remove()
    found += [f"op {op}" for op in dict.fromkeys(watch.ops)]
    found += [f"output {n}" for n, t in zip(model.output_names, outputs) if not torch.isfinite(t).all()]
    return found


VARIANTS = {  # (ane_optimized, attention implementation of the stock model)
    "stock-sdpa": (False, "sdpa"),  # the module as the units convert it
    # coremltools lowers sdpa to matmul + add + softmax; eager attention runs those same ops one by one.
    "stock-eager": (False, "eager"),
    "ane": (True, "sdpa"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_converted_module_stays_finite_in_fp16(variant: str, tiny_long_bert: Path):
    ane_optimized, attention = VARIANTS[variant]
    model = _load(tiny_long_bert, attention)
    module = export.build_module(model, ane_optimized)
    assert _nonfinite_in_fp16(module, model) == []
    with torch.inference_mode():  # and the fully masked row pools to a zero vector, not NaN
        _, pooled = module(*_padded_long_batch(model))
    assert torch.equal(pooled[-1], torch.zeros_like(pooled[-1])) and torch.isfinite(pooled).all()


@pytest.mark.parametrize("variant", ["stock-eager", "ane"])
def test_fp16_check_catches_a_mask_that_overflows_when_added(
    variant: str, tiny_long_bert: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(export, "MASK_VALUE", float(np.finfo(np.float16).min))
    monkeypatch.setattr(ane_bert, "MASK_VALUE", float(np.finfo(np.float16).min))
    ane_optimized, attention = VARIANTS[variant]
    model = _load(tiny_long_bert, attention)
    found = _nonfinite_in_fp16(export.build_module(model, ane_optimized), model)
    assert any(entry.startswith("op aten.add") for entry in found), found


def _old_pooling(summed: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return F.normalize(summed / counts.clamp(min=1e-9), p=2.0, dim=1)


@pytest.mark.parametrize("variant", ["stock-sdpa", "ane"])
def test_fp16_check_catches_a_pooling_floor_that_underflows(
    variant: str, tiny_long_bert: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(export, "pooled_unit_vector", _old_pooling)
    monkeypatch.setattr(ane_bert, "pooled_unit_vector", _old_pooling)
    ane_optimized, attention = VARIANTS[variant]
    model = _load(tiny_long_bert, attention)
    found = _nonfinite_in_fp16(export.build_module(model, ane_optimized), model)
    assert "output sentence_embedding" in found, found
