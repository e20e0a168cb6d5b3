"""GPU memory per unit (torch peak allocated, NVML used) at B1 and B64 S128, from the artifacts the bench built.

The bench times and measures energy; this adds the GPU-memory column through siliconlab.monitor.nvml until
the bench reports it itself. Usage: PYTHONPATH=src python benchmarks/gpu/memory.py UNIT[,UNIT...] [CACHE]
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import torch

from siliconlab.convert.pipeline import load_artifact
from siliconlab.monitor import nvml
from siliconlab.text import fixed_shape_inputs
from siliconlab.units import get_unit

FILLER = "the quick brown fox jumps over the lazy dog"


def main() -> None:
    units = sys.argv[1].split(",")
    default_cache = Path.home() / ".cache" / "siliconlab" / "artifacts"
    cache = Path(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SILICONLAB_CACHE", default_cache))
    ok, reason = nvml.available()
    print(f"{'unit':<24} {'weights+buffers MiB':>20} {'peak B1 MiB':>12} {'peak B64 MiB':>13} {'NVML used MiB':>14}")
    for name in units:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        runner, _ = load_artifact(cache / "bert-base" / name, get_unit(name), threads=1)
        loaded = torch.cuda.memory_allocated() / 2**20
        peaks = []
        for batch in (1, 64):
            ids, mask = fixed_shape_inputs(runner_tokenizer(cache, name), batch, 128, FILLER)
            runner.run(ids, mask)
            runner.synchronize()
            peaks.append(nvml.torch_peak_bytes() / 2**20)
        used = nvml.memory_used()["used"] / 2**20 if ok else float("nan")
        print(f"{name:<24} {loaded:20.0f} {peaks[0]:12.0f} {peaks[1]:13.0f} {used:14.0f}")
        del runner
        gc.collect()
    if not ok:
        print(f"NVML n/a: {reason}")


def runner_tokenizer(cache: Path, name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cache / "bert-base" / name)


if __name__ == "__main__":
    main()
