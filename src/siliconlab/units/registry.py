"""The unit registry: every compute unit the code knows, keyed by (model kind, unit name), available here or not.

Why one registry: a unit name means the same engine, device and precision for every kind (torch-cpu-fp32 is
the baseline of encoders, decoders and T5 alike), and `--units`, `unit="best"`, bench and convert all look
units up the same way once the model's kind is known (models/kinds.py). Adding a unit is one module in its
family's folder and one line in its kind's list here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siliconlab.errors import UsageError
from siliconlab.units.base import Unit
from siliconlab.units.coreml import COREML_UNITS
from siliconlab.units.coreml.decoder import CoreMLGpuDecoder
from siliconlab.units.fastbert.units import TorchCudaBf16Graph, TorchCudaFp8, TorchCudaFp16Graph
from siliconlab.units.mlx.decoder import MlxDecoder
from siliconlab.units.mlx.unit import MlxUnit
from siliconlab.units.onnxruntime.cpu import OnnxRuntimeCpuFp32
from siliconlab.units.onnxruntime.cpu_int8 import OnnxRuntimeCpuInt8
from siliconlab.units.onnxruntime.decoder import (
    OnnxRuntimeCpuDecoder,
    OnnxRuntimeCpuInt4Decoder,
    OnnxRuntimeCpuInt8Decoder,
)
from siliconlab.units.onnxruntime.gpu import OnnxRuntimeCudaFp16, OnnxRuntimeTensorRtFp16
from siliconlab.units.onnxruntime.seq2seq import OnnxRuntimeCpuSeq2Seq
from siliconlab.units.onnxruntime.tensorrt import TensorRtFp16
from siliconlab.units.openvino.cpu import OpenVinoCpuFp32
from siliconlab.units.openvino.cpu_bf16 import OpenVinoCpuBf16
from siliconlab.units.openvino.cpu_int8 import OpenVinoCpuInt8
from siliconlab.units.openvino.cpu_int8_static import OpenVinoCpuInt8Static
from siliconlab.units.openvino.decoder import OpenVinoCpuDecoder, OpenVinoCpuInt8Decoder
from siliconlab.units.torch.cpu import TorchCpuFp32
from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder
from siliconlab.units.torch.cuda import TorchCudaBf16, TorchCudaFp16, TorchCudaFp32
from siliconlab.units.torch.cuda_decoder import TorchCudaBf16Decoder, TorchCudaFp16Decoder, TorchCudaFp32Decoder
from siliconlab.units.torch.cuda_seq2seq import TorchCudaBf16Seq2Seq, TorchCudaFp32Seq2Seq
from siliconlab.units.torch.seq2seq_generate import TorchCpuFp32Seq2Seq

if TYPE_CHECKING:
    from siliconlab.models.kinds import Kind

#: The baseline of every kind: fp32 PyTorch on the CPU, runs everywhere.
BASELINE = "torch-cpu-fp32"

_UNITS: dict[Kind, tuple[type[Unit[Any]], ...]] = {
    "encoder": (
        TorchCpuFp32,
        OnnxRuntimeCpuFp32,
        OnnxRuntimeCpuInt8,
        OpenVinoCpuFp32,
        OpenVinoCpuInt8,
        OpenVinoCpuBf16,
        OpenVinoCpuInt8Static,
        TorchCudaFp32,
        TorchCudaFp16,
        TorchCudaBf16,
        TorchCudaFp16Graph,
        TorchCudaBf16Graph,
        TorchCudaFp8,
        OnnxRuntimeCudaFp16,
        OnnxRuntimeTensorRtFp16,
        TensorRtFp16,
        *COREML_UNITS,
        MlxUnit,
    ),
    "decoder": (
        TorchCpuFp32Decoder,
        OnnxRuntimeCpuDecoder,
        OnnxRuntimeCpuInt8Decoder,
        OnnxRuntimeCpuInt4Decoder,
        OpenVinoCpuDecoder,
        OpenVinoCpuInt8Decoder,
        MlxDecoder,
        CoreMLGpuDecoder,
        TorchCudaBf16Decoder,
        TorchCudaFp16Decoder,
        TorchCudaFp32Decoder,
    ),
    "seq2seq": (TorchCpuFp32Seq2Seq, OnnxRuntimeCpuSeq2Seq, TorchCudaFp32Seq2Seq, TorchCudaBf16Seq2Seq),
}

#: (kind, name) -> unit class: the one registry.
REGISTRY: dict[tuple[Kind, str], type[Unit]] = {
    (kind, unit.name): unit for kind, units in _UNITS.items() for unit in units
}

#: `unit="best"` without a bench record of the model on this machine: the units to try, in order, per kind (each
#: only where it can run; a bench record reorders them, tasks/best.py).
#: encoder: on short texts (what tasks see) ONNX Runtime's dynamic int8 led on AMD Zen 5 (MiniLM, real sentence:
#: 0.80 ms vs 0.93 ms for static int8, docs/units.md); static int8 and bf16 OpenVINO run only on CPUs with int8
#: dot products / bf16 arithmetic and lead on long sequences (bert-base S128: 18.2 vs 20.6 ms).
#: decoder: an NVIDIA GPU first (a machine without one skips it with its reason), then the CPU baseline. fp16
#: before bf16: as fast (1,547 vs 1,543 tokens/s at batch 1 on an H100) and, with 3 more mantissa bits, it
#: passes SmolLM2's generation gate, which bf16 misses (worst-step logit cosine 0.997 < 0.999; HF's own bf16
#: model: 0.996); bf16 remains the fallback for a model whose activations overflow fp16.
#: seq2seq: the fp32 units, GPU first; not ranked by measurement yet (chat runs causal LMs, so nothing asks T5
#: for "best" today).
DEFAULT_ORDER: dict[Kind, tuple[str, ...]] = {
    "encoder": (
        "torch-cuda-bf16-graph",
        "torch-cuda-fp16-graph",
        "coreml-ane",
        "onnxruntime-cpu-int8",
        "openvino-cpu-int8-static",
        "openvino-cpu-bf16",
        "onnxruntime-cpu-fp32",
        "openvino-cpu-fp32",
        "torch-cpu-fp32",
    ),
    "decoder": ("torch-cuda-fp16", "torch-cuda-bf16", "torch-cpu-fp32"),
    "seq2seq": ("torch-cuda-fp32", "onnxruntime-cpu-fp32", "torch-cpu-fp32"),
}

_WHAT = {"encoder": "an encoder model", "decoder": "a generative model", "seq2seq": "an encoder-decoder model"}


def classes(kind: Kind) -> dict[str, type[Unit]]:
    """name -> unit class for one kind, in registry order."""
    return {name: unit for (unit_kind, name), unit in REGISTRY.items() if unit_kind == kind}


def names(kind: Kind) -> list[str]:
    return list(classes(kind))


def get(kind: Kind, name: str) -> Unit:
    """A fresh instance of the unit `name` for `kind`; an unknown name is one line listing the kind's units."""
    try:
        return REGISTRY[(kind, name)]()
    except KeyError:
        if kind == "encoder":
            raise UsageError(f"unknown unit '{name}': choose from {', '.join(names(kind))} or 'all'") from None
        raise UsageError(f"unit '{name}' cannot run {_WHAT[kind]}: choose from {', '.join(names(kind))}") from None


def available(kind: Kind, timing: bool = False) -> list[Unit]:
    """Every unit of `kind` that runs here (with timing: those `bench` times by default, unit.timing_availability)."""
    units = [unit() for unit in classes(kind).values()]
    return [unit for unit in units if (unit.timing_availability() if timing else unit.availability()).ok]


def select(kind: Kind, spec: str | None, timing: bool = False) -> list[Unit]:
    """'all' / None -> available(kind, timing); otherwise a comma list, each name checked against the kind's units."""
    if spec is None or spec.strip() == "all":
        return available(kind, timing)
    chosen = [name.strip() for name in spec.split(",") if name.strip()]
    if not chosen:
        raise UsageError(f"no unit given: choose from {', '.join(names(kind))} or 'all'")
    return [get(kind, name) for name in dict.fromkeys(chosen)]


def default_order(kind: Kind) -> list[str]:
    return list(DEFAULT_ORDER[kind])
