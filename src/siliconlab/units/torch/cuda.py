"""torch-cuda-{fp32,fp16,bf16}: the Hugging Face model as a user would run it on an NVIDIA GPU (eager, SDPA).

fp32 keeps TF32 off (torch's default for matmuls) so it is the GPU reference; fp16/bf16 cast the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from siliconlab.models.base import OUTPUT_NAMES
from siliconlab.units.base import HALF_COSINE_MIN, Availability, Conversion, Unit
from siliconlab.units.cuda import CudaRunnerMixin, cuda_availability, cuda_versions, to_host

if TYPE_CHECKING:
    import numpy as np
    import torch

    from siliconlab.models.base import LoadedModel


def __getattr__(name: str) -> Any:
    """`DTYPES` (precision -> torch dtype) is built on first use, so importing the unit registry needs no torch."""
    if name == "DTYPES":
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TorchCudaRunner(CudaRunnerMixin):
    def __init__(self, module: torch.nn.Module, task: str):
        self.module = module
        self.output_names = OUTPUT_NAMES[task]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).cuda(non_blocking=True)
            mask = torch.from_numpy(attention_mask).cuda(non_blocking=True)
            outputs = self.module(ids, mask)
            return dict(zip(self.output_names, to_host(outputs)))


class TorchCudaUnit(Unit):
    engine = "pytorch"
    device = "cuda"
    requires = ("torch", "transformers")
    min_capability: ClassVar[tuple[int, int] | None] = None

    def platform_availability(self) -> Availability:
        return cuda_availability(self.min_capability)

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        model.model.save_pretrained(out_dir, safe_serialization=True)
        return Conversion(
            graph={"attention": "sdpa", "format": "safetensors (fp32)", "dtype_at_load": self.precision},
            library_versions=cuda_versions(),
        )

    def load(self, artifact_dir: Path, threads: int) -> TorchCudaRunner:
        from siliconlab.models.reference import load_hf_module
        from siliconlab.units.torch.cuda import DTYPES

        module = load_hf_module(artifact_dir).to("cuda", DTYPES[self.precision])
        return TorchCudaRunner(module, module.task)


class TorchCudaFp32(TorchCudaUnit):
    name = "torch-cuda-fp32"
    precision = "fp32"


class TorchCudaFp16(TorchCudaUnit):
    name = "torch-cuda-fp16"
    precision = "fp16"
    cosine_min = HALF_COSINE_MIN


class TorchCudaBf16(TorchCudaUnit):
    name = "torch-cuda-bf16"
    precision = "bf16"
    cosine_min = HALF_COSINE_MIN
