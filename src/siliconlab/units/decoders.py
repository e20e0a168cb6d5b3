"""The decoder-unit registry: every unit that can run a generative model (units/base.py `GenerativeUnit`).

Decoder units share their names with the encoder units of the same engine and precision (torch-cpu-fp32 is
the baseline for both), so `--unit` means the same thing for every model; which registry is read follows
from the model's task. Adding a decoder unit is one module in its family's folder and one line here.
"""

from __future__ import annotations

from siliconlab.errors import UsageError
from siliconlab.units.base import GenerativeUnit
from siliconlab.units.onnxruntime.decoder import OnnxRuntimeCpuDecoder, OnnxRuntimeCpuInt8Decoder
from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder
from siliconlab.units.torch.cuda_decoder import TorchCudaBf16Decoder, TorchCudaFp16Decoder, TorchCudaFp32Decoder

DECODER_BASELINE = "torch-cpu-fp32"

DECODER_REGISTRY: dict[str, type[GenerativeUnit]] = {
    unit.name: unit
    for unit in (
        TorchCpuFp32Decoder,
        OnnxRuntimeCpuDecoder,
        OnnxRuntimeCpuInt8Decoder,
        TorchCudaBf16Decoder,
        TorchCudaFp16Decoder,
        TorchCudaFp32Decoder,
    )
}

#: `unit="best"` for a decoder, until a bench record ranks them: the order to try. An NVIDIA GPU first (a
#: machine without one skips it with its reason), then the CPU baseline. fp16 before bf16: as fast (1,547 vs
#: 1,543 tokens/s at batch 1 on an H100) and, with 3 more mantissa bits, it passes SmolLM2's generation gate,
#: which bf16 misses (worst-step logit cosine 0.997 < 0.999; HF's own bf16 model: 0.996); bf16 remains the
#: fallback for a model whose activations overflow fp16. A failed gate keeps no artifact, so the order matters.
DEFAULT_ORDER = ("torch-cuda-fp16", "torch-cuda-bf16", "torch-cpu-fp32")


def get_decoder_unit(name: str) -> GenerativeUnit:
    try:
        return DECODER_REGISTRY[name]()
    except KeyError:
        raise UsageError(
            f"unit '{name}' cannot run a generative model: choose from {', '.join(DECODER_REGISTRY)}"
        ) from None


def select_decoder_units(spec: str | None) -> list[GenerativeUnit]:
    """'all' / None -> every available decoder unit; otherwise a comma list of names."""
    if spec is None or spec.strip() == "all":
        return [unit() for unit in DECODER_REGISTRY.values() if unit().availability().ok]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UsageError(f"no unit given: choose from {', '.join(DECODER_REGISTRY)} or 'all'")
    return [get_decoder_unit(name) for name in dict.fromkeys(names)]
