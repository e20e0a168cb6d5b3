"""torch-cuda-{fp32,bf16} for encoder-decoder models (T5): Hugging Face generate on an NVIDIA GPU.

The causal CUDA units replay a captured decode step (cuda_decoder.py); T5's decoder also attends to the encoder
states and runs relative-position buckets, which that step does not model, so for T5 these units run the same
runner as the CPU baseline (seq2seq_generate.py: HF `generate` with a static cache; prefill = encoder + first
decoder step) with the model on the GPU. fp32 is the exactness check (TF32 off); bf16 is the precision T5 was
trained in (its feed-forward activations overflow fp16, so there is no fp16 T5 unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from siliconlab.units.base import HALF_AGREEMENT_MIN, HALF_COSINE_MIN, Availability, Conversion
from siliconlab.units.torch.seq2seq_generate import TorchCpuFp32Seq2Seq, TorchSeq2SeqRunner

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel


class _TorchCudaSeq2Seq(TorchCpuFp32Seq2Seq):
    device = "cuda"
    dtype_name: ClassVar[str] = "float32"

    def platform_availability(self) -> Availability:
        from siliconlab.units.cuda import cuda_availability

        return cuda_availability()

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import torch

        model.model.to(getattr(torch, self.dtype_name)).save_pretrained(out_dir, safe_serialization=True)
        return Conversion(graph={"format": f"safetensors ({self.precision})", "generate": "HF generate, static cache"})

    def load(self, artifact_dir: Path, threads: int) -> TorchSeq2SeqRunner:
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        from siliconlab.models.generative import context_length

        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: the exactness check
        torch.backends.cudnn.allow_tf32 = False
        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        dtype = getattr(torch, self.dtype_name)
        model = AutoModelForSeq2SeqLM.from_pretrained(
            artifact_dir, dtype=dtype, use_safetensors=True, trust_remote_code=False
        )
        return TorchSeq2SeqRunner(model.to("cuda").eval(), context_length(config))


class TorchCudaFp32Seq2Seq(_TorchCudaSeq2Seq):
    name = "torch-cuda-fp32"
    precision = "fp32"


class TorchCudaBf16Seq2Seq(_TorchCudaSeq2Seq):
    name = "torch-cuda-bf16"
    precision = "bf16"
    dtype_name = "bfloat16"
    agreement_min = HALF_AGREEMENT_MIN
    cosine_min = HALF_COSINE_MIN
    exact_free_run = False
