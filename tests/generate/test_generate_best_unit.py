"""`unit="best"` for a generative model: the CUDA decoder units first, each skipped here with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import siliconlab
from siliconlab.units.decoders import DEFAULT_ORDER


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device: 'best' picks it")
def test_best_falls_back_to_the_cpu_without_a_gpu(tiny_llama: Path, artifact_cache: Path):
    assert DEFAULT_ORDER[0].startswith("torch-cuda-")
    bot = siliconlab.load(str(tiny_llama), unit="best", cache=artifact_cache, threads=1)
    assert bot.unit == "torch-cpu-fp32" and bot.loaded.why_unit == "default order for generative models"
    assert bot.reply("hello there", max_new_tokens=3)["unit"] == "torch-cpu-fp32"
