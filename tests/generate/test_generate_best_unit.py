"""`unit="best"` for a generative model: the model's latest bench record on this machine ranks the decoder units
(decode tokens/s); without one, the decoder default order (CUDA units first, each skipped here with its reason)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import siliconlab
from siliconlab.units.registry import default_order


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device: 'best' picks it")
def test_best_falls_back_to_the_cpu_without_a_gpu(tiny_llama: Path, artifact_cache: Path):
    assert default_order("decoder")[0].startswith("torch-cuda-")
    bot = siliconlab.load(str(tiny_llama), unit="best", cache=artifact_cache, threads=1)
    assert bot.unit == "torch-cpu-fp32" and "default order" in bot.loaded.why_unit
    assert bot.reply("hello there", max_new_tokens=3)["unit"] == "torch-cpu-fp32"


def test_best_follows_the_bench_record_of_this_machine(tiny_llama: Path, tmp_path: Path):
    """A record whose fastest stable decode is onnxruntime-cpu-fp32 (not in the default order) makes it "best"."""
    from siliconlab.bench.machine import machine_info
    from siliconlab.tasks.best import write_record

    model = shutil.copytree(tiny_llama, tmp_path / "ranked-llama")  # its own model folder: its own record
    cache = tmp_path / "cache"
    rows = [
        {"unit": "torch-cpu-fp32", "workload": "generation", "batch": 1, "new_tokens": 32,
         "decode_tokens_per_s": 50.0, "parity": {"passed": True}},
        {"unit": "onnxruntime-cpu-fp32", "workload": "generation", "batch": 1, "new_tokens": 32,
         "decode_tokens_per_s": 80.0, "parity": {"passed": True}},
    ]  # fmt: skip
    assert write_record(cache / model.name, {"machine": machine_info(), "results": rows}) is not None
    bot = siliconlab.load(str(model), unit="best", cache=cache, threads=1)
    assert bot.unit == "onnxruntime-cpu-fp32" and bot.loaded.why_unit.startswith("fastest stable unit")
    assert bot.reply("hello there", max_new_tokens=3)["unit"] == "onnxruntime-cpu-fp32"
