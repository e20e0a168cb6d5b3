"""torch-cpu-fp32: the Hugging Face model as a user would run it (eager PyTorch, SDPA attention) — the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from siliconlab.models.base import OUTPUT_NAMES, LoadedModel
from siliconlab.models.hf_directory import task_of
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.units.base import Conversion, CpuRunnerMixin, Unit


class TorchRunner(CpuRunnerMixin):
    """Runs any (input_ids, attention_mask) -> outputs PyTorch module: the baseline, or a rewrite under check."""

    def __init__(self, module: torch.nn.Module, device: str = "cpu", output_names: tuple[str, ...] | None = None):
        self.module = module.eval()
        self.device = device
        self.output_names = output_names or OUTPUT_NAMES[module.task]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.module(
                torch.from_numpy(input_ids).to(self.device), torch.from_numpy(attention_mask).to(self.device)
            )
        return {name: out.float().cpu().numpy() for name, out in zip(self.output_names, outputs)}


def load_hf_module(artifact_dir: Path) -> EncoderWithHead:
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(artifact_dir)
    task = task_of(config)
    factory = AutoModelForSequenceClassification if task == "classification" else AutoModel
    model = factory.from_pretrained(artifact_dir, use_safetensors=True, dtype=torch.float32, attn_implementation="sdpa")
    return EncoderWithHead(model.eval(), task).eval()


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
        torch.set_num_threads(threads)
        return TorchRunner(load_hf_module(artifact_dir))
