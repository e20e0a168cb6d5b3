"""Is the baseline what a user runs? `torch-cpu-fp32` (siliconlab's runner on its artifact) against the Hugging Face
model called directly in fp32, same process, interleaved 0.5 s blocks: the ratio should be within 10 %.

    python benchmarks/cpu/baseline_check.py --model bert-base --seq 128
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    import torch

    from siliconlab.bench.machine import cpu_model
    from siliconlab.convert.pipeline import Converter, load_artifact
    from siliconlab.models import resolve
    from siliconlab.paths import default_cache
    from siliconlab.units import get_unit

    torch.set_num_threads(args.threads)
    source = resolve(args.model)
    outcome = Converter(source, default_cache(), args.threads).convert_unit(get_unit("torch-cpu-fp32"))
    unit_runner, _ = load_artifact(outcome.artifact_dir, get_unit("torch-cpu-fp32"), args.threads)
    hf = source.load().model.eval()  # what a user writes: the model, called with keyword tensors
    ids = np.full((1, args.seq), 2000, dtype=np.int64)
    mask = np.ones_like(ids)
    t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

    def direct() -> None:
        with torch.inference_mode():
            hf(input_ids=t_ids, attention_mask=t_mask)

    runs = {"hf-direct": direct, "torch-cpu-fp32": lambda: unit_runner.run(ids, mask)}
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        for name, run in runs.items():
            block = time.perf_counter() + 0.5
            while time.perf_counter() < block:
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    hf_p50 = statistics.median(samples["hf-direct"])
    print(f"# {cpu_model()}, {args.threads} threads, {args.model} B1 S{args.seq}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:16s} p50 {p50:8.2f} ms  n={len(values):4d}  vs direct {p50 / hf_p50:.3f}")


if __name__ == "__main__":
    main()
