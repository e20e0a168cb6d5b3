"""torch-cpu-fp32: the Hugging Face model as a user would run it (eager PyTorch, SDPA attention) — the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from siliconlab.units.base import Conversion, Unit

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel
    from siliconlab.models.reference import TorchRunner


class TorchCpuFp32(Unit):
    name = "torch-cpu-fp32"
    engine = "pytorch"
    device = "cpu"
    precision = "fp32"
    requires = ("torch", "transformers")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        model.model.save_pretrained(out_dir, safe_serialization=True)
        return Conversion(graph={"attention": "sdpa", "format": "safetensors"})

    def load(self, artifact_dir: Path, threads: int) -> TorchRunner:
        import torch

        from siliconlab.models.reference import TorchRunner, load_hf_module

        torch.set_num_threads(threads)
        return TorchRunner(load_hf_module(artifact_dir))
