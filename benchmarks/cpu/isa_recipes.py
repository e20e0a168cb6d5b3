"""Which CPU recipe wins on *this* instruction set? OpenVINO f32 / bf16 / NNCF static int8 and ONNX Runtime int8
against torch fp32, on MiniLM or bert-base: accuracy (pooled cosine vs fresh fp32 torch on the parity sentences)
next to latency, engines interleaved in short blocks within one process so a noisy phase hits all alike.

    python benchmarks/cpu/isa_recipes.py --model minilm --threads 2
    python benchmarks/cpu/isa_recipes.py --model bert-base --seq 128 --variants ov-f32,ov-bf16,ov-int8-static

Threads default to the affinity mask (taskset on a 16-core host: os.cpu_count() still says 16).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pooled(out: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(list(out.values())[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seq", type=int, default=0, help="fixed sequence length (0: the real sentence)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per variant, in 0.5 s blocks")
    parser.add_argument("--variants", default="torch,ov-f32,ov-bf16,ov-int8-static,ov-int8-static-bf16")
    args = parser.parse_args()

    import openvino as ov
    import torch

    from siliconlab.bench.machine import cpu_model
    from siliconlab.cpu_features import detect
    from siliconlab.data import calibration_texts, parity_texts
    from siliconlab.models import resolve
    from siliconlab.models.reference import TorchRunner
    from siliconlab.models.wrapper import EncoderWithHead
    from siliconlab.text import encode
    from siliconlab.units.openvino.cpu import openvino_model
    from siliconlab.units.openvino.quantize import quantize_static

    torch.set_num_threads(args.threads)
    print(f"# {cpu_model()} | {detect().summary()} | threads {args.threads}")
    source = resolve(args.model)
    model = source.load()
    fresh = source.load()
    reference = TorchRunner(EncoderWithHead(fresh.model, fresh.task), output_names=model.output_names)
    texts = parity_texts()
    refs = [_pooled(reference.run(*encode(model.tokenizer, [t], model.max_length, warn=False)))[0] for t in texts]

    if args.seq:
        ids = np.full((args.batch, args.seq), 2000, dtype=np.int64)
        ids[:, 0] = 101
        mask = np.ones_like(ids)
    else:
        sentence = "a gorgeous, witty, seductive movie."
        ids, mask = encode(model.tokenizer, [sentence] * args.batch, model.max_length, warn=False)

    runners: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = openvino_model(model, Path(tmp))
        core = ov.Core()

        def compiled(ov_model, precision: str):
            config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                      "INFERENCE_PRECISION_HINT": precision}  # fmt: skip
            c = core.compile_model(ov_model, "CPU", config)
            request = c.create_infer_request()
            return lambda i, m: {"out": np.asarray(request.infer({"input_ids": i, "attention_mask": m})[c.outputs[-1]])}

        wanted = args.variants.split(",")
        if "torch" in wanted:
            runners["torch"] = reference.run
        if "ov-f32" in wanted:
            runners["ov-f32"] = compiled(fp32, "f32")
        if "ov-bf16" in wanted:
            runners["ov-bf16"] = compiled(fp32, "bf16")
        if any(v.startswith("ov-int8-static") for v in wanted):
            started = time.perf_counter()
            int8 = quantize_static(fp32, model, calibration_texts())
            print(f"# NNCF static int8: {time.perf_counter() - started:.1f} s")
            if "ov-int8-static" in wanted:
                runners["ov-int8-static"] = compiled(int8, "f32")
            if "ov-int8-static-bf16" in wanted:
                runners["ov-int8-static-bf16"] = compiled(int8, "bf16")
        if any(v.startswith("ov-int8-mixed") for v in wanted):
            mixed = quantize_static(fp32, model, calibration_texts(), float_ffn_down=True)
            if "ov-int8-mixed-f32" in wanted:
                runners["ov-int8-mixed-f32"] = compiled(mixed, "f32")
            if "ov-int8-mixed-bf16" in wanted:
                runners["ov-int8-mixed-bf16"] = compiled(mixed, "bf16")

        units = [v.removeprefix("unit:") for v in wanted if v.startswith("unit:")]
        if units:  # siliconlab's own units, converted (or reused) through the artifact store, parity-gated
            from siliconlab.convert.pipeline import Converter, load_artifact
            from siliconlab.paths import default_cache
            from siliconlab.units import get_unit

            converter = Converter(source, default_cache(), args.threads)
            for name in units:
                outcome = converter.convert_unit(get_unit(name))
                if outcome.ok:
                    runner, _ = load_artifact(outcome.artifact_dir, get_unit(name), args.threads)
                    runners[f"unit:{name}"] = runner.run
                else:
                    print(f"# {name}: {outcome.error}")

        rows = []
        for name, run in runners.items():
            cos = []
            for text, ref in zip(texts, refs):
                got = _pooled(run(*encode(model.tokenizer, [text], model.max_length, warn=False)))[0]
                cos.append(float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))))
            rows.append((name, min(cos)))
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for run in runners.values():
            run(ids, mask)
        end = time.perf_counter() + args.seconds * len(runners)
        while time.perf_counter() < end:
            for name, run in runners.items():
                block = time.perf_counter() + 0.5
                while time.perf_counter() < block:
                    t0 = time.perf_counter()
                    run(ids, mask)
                    samples[name].append((time.perf_counter() - t0) * 1e3)
        base = statistics.median(samples["torch"]) if "torch" in samples else None
        print(f"| variant | cos min | p50 ms | p10-p90 ms | vs torch | (B{args.batch} S{ids.shape[1]}) |")
        print("|---|---|---|---|---|---|")
        for name, cos in rows:
            s = sorted(samples[name])
            p50 = statistics.median(s)
            spread = f"{s[len(s) // 10]:.2f}-{s[len(s) * 9 // 10]:.2f}"
            ratio = f"{base / p50:.2f}x" if base else "-"
            print(f"| {name} | {cos:.6f} | {p50:.2f} | {spread} | {ratio} | n={len(s)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
