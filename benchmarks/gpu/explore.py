"""Device-side scratch: ceilings, per-GEMM times, FastBert variants' device time and wall time, a kernel profile.

Not the product's timer (that is `siliconlab bench`): this is where variants are compared before one is
chosen. Run on a GPU machine from the repo root: `PYTHONPATH=src python benchmarks/gpu/explore.py [out.json]`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from triton.testing import do_bench

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from scratch import section_runner  # noqa: E402

RESULTS: dict = {}
section = section_runner("env,ceil,gemm,model,profile")


def median_ms(fn, warmup=25, rep=200) -> float:
    return do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def graph_us(fn, reps: int = 20) -> float:
    """Per-call device time of fn with launch gaps removed: `reps` calls captured in one graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    return median_ms(graph.replay) * 1e3 / reps


@section("env")
def env():
    import subprocess

    for mod in ("typer", "rich", "psutil", "safetensors", "tokenizers", "pandas", "pynvml", "triton", "matplotlib"):
        try:
            module = __import__(mod)
            print(f"   {mod} {getattr(module, '__version__', 'ok')}")
        except Exception as exc:
            print(f"   {mod} MISSING {exc}")
    print("  ", torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), torch.cuda.get_device_capability())
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,memory.total",
         "--format=csv"], capture_output=True, text=True)  # fmt: skip
    print(out.stdout.strip())
    RESULTS["device"] = torch.cuda.get_device_name()


@section("ceil")
def ceilings():
    n = 8192
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        ms = median_ms(lambda a=a, b=b: a @ b, rep=500)
        RESULTS[f"gemm_{name}_tflops"] = 2 * n**3 / ms / 1e9
    a = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn)
    b = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn).t()
    one = torch.tensor(1.0, device="cuda")
    ms = median_ms(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16), rep=500)
    RESULTS["gemm_fp8_tensorwise_tflops"] = 2 * n**3 / ms / 1e9
    sa = torch.ones(n, 1, device="cuda")
    sb = torch.ones(1, n, device="cuda")
    ms = median_ms(lambda: torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16), rep=500)
    RESULTS["gemm_fp8_rowwise_tflops"] = 2 * n**3 / ms / 1e9
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    ms = median_ms(lambda: y.copy_(x), rep=300)
    RESULTS["d2d_copy_TBps"] = 2 * x.numel() / ms / 1e9
    states = torch.randn(64, 128, 768, device="cuda")
    pinned = torch.empty(states.shape, pin_memory=True)
    pageable = torch.empty(states.shape)
    ms = median_ms(lambda: pinned.copy_(states, non_blocking=True))
    RESULTS["d2h_pinned_25MB_ms"] = ms
    RESULTS["d2h_pinned_GBps"] = states.numel() * 4 / ms / 1e6
    ms = median_ms(lambda: pageable.copy_(states))
    RESULTS["d2h_pageable_25MB_ms"] = ms

    def fresh():
        host = torch.empty(states.shape, pin_memory=True)
        host.copy_(states, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return host.numpy()

    samples = []
    for _ in range(50):
        t = time.perf_counter()
        fresh()
        samples.append((time.perf_counter() - t) * 1e3)
    RESULTS["d2h_caching_pinned_wall_ms"] = statistics.median(samples)
    for key in sorted(RESULTS):
        if key.startswith(("gemm", "d2", "d2d")):
            print(f"   {key}: {RESULTS[key]:.3f}")


SHAPES = {"qkv": (2304, 768), "out": (768, 768), "ffn1": (3072, 768), "ffn2": (768, 3072)}


@section("gemm")
def gemms():
    from siliconlab.ops import fp8

    rows = []
    for m in (128, 8192):
        for name, (n, k) in SHAPES.items():
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
            bias = torch.randn(n, device="cuda", dtype=torch.bfloat16)
            us = graph_us(lambda x=x, w=w: F.linear(x, w))
            us_bias = graph_us(lambda x=x, w=w, b=bias: F.linear(x, w, b))
            xq, xs = fp8.quantize_rows(x)
            wq, ws = fp8.quantize_rows(w)
            us8 = graph_us(lambda xq=xq, xs=xs, wq=wq, ws=ws: fp8.scaled_linear(xq, xs, wq, ws))
            flop = 2 * m * n * k
            rows.append((m, name, us, us_bias, us8, flop / us / 1e6, flop / us8 / 1e6))
    print("   M     gemm   bf16 us  +bias us  fp8 us   bf16 TF/s  fp8 TF/s")
    for m, name, us, usb, us8, tf, tf8 in rows:
        print(f"   {m:<5} {name:<6} {us:8.2f} {usb:9.2f} {us8:8.2f} {tf:10.0f} {tf8:9.0f}")
    RESULTS["gemms"] = rows


def load_bert():
    from siliconlab.models import resolve

    return resolve("bert-base").load()


def wall_ms(runner, ids, mask, iters):
    runner.run(ids, mask)
    samples = []
    for _ in range(iters):
        t = time.perf_counter()
        runner.run(ids, mask)
        runner.synchronize()
        samples.append((time.perf_counter() - t) * 1e3)
    return np.percentile(samples, [50, 90])


@section("model")
def model_variants():
    from siliconlab.models.wrapper import EncoderWithHead
    from siliconlab.text import encode, fixed_shape_inputs
    from siliconlab.units.fastbert.model import FastBert
    from siliconlab.units.fastbert.units import GraphRunner

    model = load_bert()
    tok = model.tokenizer
    ref = EncoderWithHead(model.model, "embedding").cuda().eval()
    texts = ["a short one", "a somewhat longer sentence about nothing in particular at all, really", "mid length",
             "the quick brown fox jumps over the lazy dog " * 5]  # fmt: skip
    masked = encode(tok, texts, 512)
    filler = "the quick brown fox jumps over the lazy dog"
    inputs = {"B1": fixed_shape_inputs(tok, 1, 128, filler), "B64": fixed_shape_inputs(tok, 64, 128, filler)}
    with torch.inference_mode():
        refs = {k: ref(*(torch.from_numpy(a).cuda() for a in v))[1].float().cpu() for k, v in inputs.items()}
        ref_masked = ref(*(torch.from_numpy(a).cuda() for a in masked))[1].float().cpu()
    del ref
    # (label, dtype, fp8, overrides on FastBert, runner chunks, shapes)
    variants = [
        ("bf16", torch.bfloat16, False, {}, None, ("B1", "B64")),
        ("fp16", torch.float16, False, {}, None, ("B1", "B64")),
        ("fp8", torch.bfloat16, True, {}, None, ("B1", "B64")),
    ]
    ablations = [
        ("bf16 no-gelu-epi", torch.bfloat16, False, {"gelu_epilogue": False}, None, ("B1", "B64")),
        ("bf16 splitffn2=1", torch.bfloat16, False, {"SPLIT_FFN2": 1}, None, ("B1",)),
        ("bf16 splitffn2=2", torch.bfloat16, False, {"SPLIT_FFN2": 2}, None, ("B1",)),
        ("bf16 splitout=2", torch.bfloat16, False, {"SPLIT_OUT": 2}, None, ("B1",)),
        ("bf16 chunks=2", torch.bfloat16, False, {}, 2, ("B64",)),
        ("bf16 chunks=4", torch.bfloat16, False, {}, 4, ("B64",)),
        ("fp8 chunks=2", torch.bfloat16, True, {}, 2, ("B64",)),
    ]
    if os.environ.get("ABLATIONS", "1") == "1":
        variants += ablations
    table = []
    for name, dtype, use_fp8, overrides, chunks, shapes in variants:
        try:
            fast = FastBert(model.model, "embedding", dtype, "cuda", fp8=use_fp8,
                            gelu_epilogue=overrides.get("gelu_epilogue", True))  # fmt: skip
            for key, value in overrides.items():
                if key.isupper():
                    setattr(fast, key, value)
            runner = GraphRunner(fast, chunks=chunks)
            got = runner.run(*masked)["sentence_embedding"]
            cos_masked = F.cosine_similarity(torch.from_numpy(got), ref_masked, dim=1).min().item()
            for key in shapes:
                ids, mask = inputs[key]
                out = runner.run(ids, mask)["sentence_embedding"]
                cos = F.cosine_similarity(torch.from_numpy(out), refs[key], dim=1).min().item()
                graph_key = (*runner.bucket_shape(*ids.shape), True, 0)
                whole = graph_key in runner.buckets  # absent when the batch ran as chunks
                device_ms = median_ms(runner.buckets[graph_key].graph.replay, rep=300) if whole else float("nan")
                wall = wall_ms(runner, ids, mask, 400 if key == "B1" else 100)
                flops = 1.4306e12 if key == "B64" else 1.4306e12 / 64
                table.append((name, key, device_ms, wall[0], wall[1], flops / (wall[0] / 1e3) / 1e12, cos, cos_masked))
                print("   {:<18} {:<4} {:8.3f} {:8.3f} {:8.3f} {:6.0f} {:9.6f} {:9.6f}".format(*table[-1]), flush=True)
            del runner, fast
            torch.cuda.empty_cache()
        except Exception:
            traceback.print_exc()
    print("   variant            shape dev ms  wall p50 wall p90 TF/s(wall) cos(dense) cos(masked)")
    for row in table:
        print("   {:<18} {:<4} {:8.3f} {:8.3f} {:8.3f} {:6.0f} {:9.6f} {:9.6f}".format(*row))
    RESULTS["variants"] = table


@section("profile")
def profile():
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    from siliconlab.units.fastbert.model import FastBert

    model = load_bert()
    for label, b, use_fp8 in (("B1 bf16", 1, False), ("B64 bf16", 64, False), ("B1 fp8", 1, True),
                              ("B64 fp8", 64, True)):  # fmt: skip
        fast = FastBert(model.model, "embedding", torch.bfloat16, "cuda", fp8=use_fp8)
        ids = torch.randint(1000, 2000, (b, 128), device="cuda")
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            for _ in range(3):
                fast(ids, mask, True)
            torch.cuda.synchronize()
            with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    fast(ids, mask, True)
                torch.cuda.synchronize()
        events = [e for e in prof.key_averages() if e.device_type.name == "CUDA" or e.self_device_time_total > 0]
        events.sort(key=lambda e: -e.self_device_time_total)
        total = sum(e.self_device_time_total for e in events) / 5
        print(f"   -- {label}: kernel time per forward {total:.0f} us, "
              f"{sum(e.count for e in events) / 5:.0f} kernels")  # fmt: skip
        for e in events[:8]:
            print(f"      {e.self_device_time_total / 5:8.1f} us  x{e.count // 5:<3} {e.key[:90]}")
        RESULTS[f"profile {label}"] = total
        del fast


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "explore.json"
    with open(path, "w") as handle:
        json.dump(RESULTS, handle, indent=1, default=str)
    print(f"\nwrote {path}")
