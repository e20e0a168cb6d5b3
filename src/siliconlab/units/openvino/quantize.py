"""NNCF post-training static int8 for OpenVINO encoders: weights *and* activations int8, calibrated on real text,
so the CPU's int8 dot-product units (AVX-512 VNNI, AMX-INT8) do the matrix work.

NNCF's transformer preset keeps softmax, LayerNorm and GELU in float and quantizes the MatMul inputs; activation
ranges come from real sentences (never the parity set). Run once per conversion: ~20 s for MiniLM on 2 cores.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel

#: SmoothQuant's migration strength for the MatMul inputs. MiniLM, pooled cosine min over the parity sentences
#: (64 calibration texts, AMD Zen 5): off 0.9897, 0.5 0.9847, 0.8 0.9947, 0.95 (NNCF's default) 0.9906.
SMOOTH_ALPHA = 0.8


def calibration_items(model: LoadedModel, texts: list[str]) -> list[dict[str, Any]]:
    from siliconlab.text import encode

    items = []
    for text in texts:  # one text per item, at its natural length: the ranges a batch-1 request produces
        ids, mask = encode(model.tokenizer, [text], model.max_length, warn=False)
        items.append({"input_ids": ids, "attention_mask": mask})
    return items


def ffn_down_projections(ov_model: Any) -> list[str]:
    """MatMuls fed by the FFN's GELU: BERT's activation outliers live in their inputs (Bondarenko et al., 2021)."""
    return [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() == "MatMul" and op.input_value(0).get_node().get_type_name() == "Gelu"]  # fmt: skip


def classifier_head(ov_model: Any) -> list[str]:
    """The last MatMul: a task model's classification head. It is tiny (hidden × labels) and decides the label, so
    it stays in float (as the ONNX Runtime int8 unit keeps it in fp32)."""
    matmuls = [op.get_friendly_name() for op in ov_model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    return matmuls[-1:]


def quantize_static(
    ov_model: Any,
    model: LoadedModel,
    texts: list[str],
    smooth_alpha: float = SMOOTH_ALPHA,
    float_ffn_down: bool = False,
) -> Any:
    """`float_ffn_down` keeps the FFN down-projections out of int8 (they then run in the compiled model's float
    precision): MiniLM's worst pooled cosine 0.9947 -> 0.9982, for a third of the FFN's multiply-adds. A
    classifier's head always stays float."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    nncf.set_log_level(logging.ERROR)
    items = calibration_items(model, texts)
    advanced = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=smooth_alpha))
    names = (ffn_down_projections(ov_model) if float_ffn_down else []) + (
        classifier_head(ov_model) if model.head.classifier else []
    )
    ignored = nncf.IgnoredScope(names=names) if names else None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
        return nncf.quantize(
            ov_model.clone(),  # never change the caller's model: it is the fp32 reference and may be quantized again
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(items),
            advanced_parameters=advanced,
            ignored_scope=ignored,
        )
