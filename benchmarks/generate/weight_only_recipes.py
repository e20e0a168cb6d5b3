"""Weight-only quantization recipes for the ONNX Runtime decoder step graph: decode speed and the generation gate.

Takes `onnxruntime-cpu-fp32`'s SmolLM2 step graph (converted on first use), writes one MatMulNBits variant per
recipe into --work, then times each variant's batch-1 decode steps (a 32-token prompt, median over 2 x 22
steps, the variants interleaved) and runs the generation gate of convert/parity_generate.py on each (the six
chat prompts, 24 teacher-forced steps, against torch fp32). docs/generate.md, "Weight-only int4 tried".

    python benchmarks/generate/weight_only_recipes.py [--work /tmp/wo] [--recipes sym4,asym4,hqq4,q8] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import numpy as np

RECIPES = {
    # name: (bits, symmetric, accuracy level, algorithm)
    "sym4": (4, True, 4, "rtn"),  # onnxruntime-cpu-int4's recipe
    "sym4-fp32": (4, True, 1, "rtn"),
    "asym4": (4, False, 4, "rtn"),
    "hqq4": (4, False, 4, "hqq"),
    "q8": (8, True, 1, "rtn"),
}


def quantize(source: Path, out: Path, recipe: str) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    bits, symmetric, level, algorithm = RECIPES[recipe]
    if algorithm == "hqq":
        config = HQQWeightOnlyQuantConfig(block_size=32, bits=bits)
    else:
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=symmetric, accuracy_level=level, bits=bits)
    logging.getLogger().setLevel(logging.ERROR)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=bits, block_size=32, is_symmetric=symmetric,
                                     accuracy_level=level, algo_config=config)  # fmt: skip
    quantizer.process()
    onnx.save_model(quantizer.model.model, str(out))
    return out


def decode_ms(runners: dict[str, object], steps: int = 24, rounds: int = 2) -> dict[str, float]:
    prompt = np.random.default_rng(0).integers(100, 40000, size=(1, 32)).astype(np.int64)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():  # interleaved: a noisy phase hits every variant
            logits, cache = runner.prefill(prompt)
            for step in range(steps):
                token = logits.argmax(-1).reshape(1, 1)
                begin = time.perf_counter()
                logits, cache = runner.decode_step(token, cache)
                if step >= 2:
                    times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/weight-only-recipes"))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from siliconlab.convert.parity_generate import check_generation_parity, reference_generation
    from siliconlab.models.smollm2 import SmolLM2Source
    from siliconlab.tasks import load
    from siliconlab.units.onnxruntime.decoder import OrtDecoderRunner, _cache_shape

    fp32 = load("smollm2-chat", unit="onnxruntime-cpu-fp32", threads=args.threads)  # converts once, gated
    source = Path(fp32.loaded.artifact_dir) / "decoder.onnx"
    model = SmolLM2Source().load()
    layers, kv_heads, head_dim = _cache_shape(model.config)
    args.work.mkdir(parents=True, exist_ok=True)
    paths = {"fp32": source}
    for recipe in [r.strip() for r in args.recipes.split(",") if r.strip()]:
        paths[recipe] = quantize(source, args.work / f"{recipe}.onnx", recipe)
    runners = {name: OrtDecoderRunner(path, args.threads, 2048, layers, kv_heads, head_dim)
               for name, path in paths.items()}  # fmt: skip
    speed = decode_ms(runners)
    reference = reference_generation(model)
    print("| recipe | decode ms/step (tok/s) | argmax agreement | worst-step cosine |\n|---|---|---|---|")
    for name, runner in runners.items():
        parity = check_generation_parity(runner, reference, 0.95, 0.95, False)
        print(f"| {name} | {speed[name]:.1f} ({1e3 / speed[name]:.1f}) | {parity.agreement:.1%} | "
              f"{parity.cosine_min:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
