"""The decoder-unit registry: every unit that can run a generative model (units/base.py `GenerativeUnit`).

Decoder units share their names with the encoder units of the same engine and precision (torch-cpu-fp32 is
the baseline for both), so `--unit` means the same thing for every model; which registry is read follows
from the model's task. Adding a decoder unit is one module in its family's folder and one line here.
"""

from __future__ import annotations

from siliconlab.errors import UsageError
from siliconlab.units.base import GenerativeUnit
from siliconlab.units.coreml.decoder import CoreMLGpuDecoder
from siliconlab.units.mlx.decoder import MlxDecoder
from siliconlab.units.onnxruntime.decoder import (
    OnnxRuntimeCpuDecoder,
    OnnxRuntimeCpuInt4Decoder,
    OnnxRuntimeCpuInt8Decoder,
)
from siliconlab.units.onnxruntime.seq2seq import OnnxRuntimeCpuSeq2Seq
from siliconlab.units.openvino.decoder import OpenVinoCpuDecoder, OpenVinoCpuInt8Decoder
from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder
from siliconlab.units.torch.cuda_decoder import TorchCudaBf16Decoder, TorchCudaFp16Decoder, TorchCudaFp32Decoder
from siliconlab.units.torch.cuda_seq2seq import TorchCudaBf16Seq2Seq, TorchCudaFp32Seq2Seq
from siliconlab.units.torch.seq2seq_generate import TorchCpuFp32Seq2Seq

DECODER_BASELINE = "torch-cpu-fp32"

DECODER_REGISTRY: dict[str, type[GenerativeUnit]] = {
    unit.name: unit
    for unit in (
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
    )
}

#: Encoder-decoder models (T5) under the same unit names: which registry is read follows from the model.
SEQ2SEQ_REGISTRY: dict[str, type[GenerativeUnit]] = {
    unit.name: unit for unit in (TorchCpuFp32Seq2Seq, OnnxRuntimeCpuSeq2Seq, TorchCudaFp32Seq2Seq, TorchCudaBf16Seq2Seq)
}

#: `unit="best"` for a decoder, until a bench record ranks them: the order to try. An NVIDIA GPU first (a
#: machine without one skips it with its reason), then the CPU baseline. fp16 before bf16: as fast (1,547 vs
#: 1,543 tokens/s at batch 1 on an H100) and, with 3 more mantissa bits, it passes SmolLM2's generation gate,
#: which bf16 misses (worst-step logit cosine 0.997 < 0.999; HF's own bf16 model: 0.996); bf16 remains the
#: fallback for a model whose activations overflow fp16. A failed gate keeps no artifact, so the order matters.
DEFAULT_ORDER = ("torch-cuda-fp16", "torch-cuda-bf16", "torch-cpu-fp32")


def get_decoder_unit(name: str, seq2seq: bool = False) -> GenerativeUnit:
    """The unit `name` for a causal LM, or for an encoder-decoder model (T5) when seq2seq."""
    registry, kind = (
        (SEQ2SEQ_REGISTRY, "an encoder-decoder model") if seq2seq else (DECODER_REGISTRY, "a generative model")
    )
    try:
        return registry[name]()
    except KeyError:
        raise UsageError(f"unit '{name}' cannot run {kind}: choose from {', '.join(registry)}") from None


def is_seq2seq(config: object) -> bool:
    return bool(getattr(config, "is_encoder_decoder", False))


def select_decoder_units(spec: str | None, seq2seq: bool = False, timing: bool = False) -> list[GenerativeUnit]:
    """'all' / None -> every available decoder unit (for T5 when seq2seq; with timing, those `bench` times by
    default: not MLX's reference-BLAS CPU build off Apple silicon); otherwise a comma list of names."""
    registry = SEQ2SEQ_REGISTRY if seq2seq else DECODER_REGISTRY
    if spec is None or spec.strip() == "all":
        units = [unit() for unit in registry.values()]
        return [unit for unit in units if (unit.timing_availability() if timing else unit.availability()).ok]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UsageError(f"no unit given: choose from {', '.join(registry)} or 'all'")
    return [get_decoder_unit(name, seq2seq) for name in dict.fromkeys(names)]
