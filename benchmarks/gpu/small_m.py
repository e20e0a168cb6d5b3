"""Batch-1 latency work on the GPU: Triton small-M GEMMs vs cuBLAS, a tile sweep, programmatic dependent launch
(PDL), and where the host's share of a call goes. Scratch for choosing defaults, not the product's timer
(`siliconlab bench` is). Run from the repo root on a GPU machine:
`PYTHONPATH=src python benchmarks/gpu/small_m.py out.json` (SECTIONS=check,gemm,sweep,model,host,profile).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from triton.testing import do_bench

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from scratch import section_runner  # noqa: E402

from siliconlab.units.fastbert import gemm_tiles  # noqa: E402
from siliconlab.units.fastbert.gemm_tiles import GemmConfig  # noqa: E402
from siliconlab.units.fastbert.kernels import common as cuda_kernels  # noqa: E402
from siliconlab.units.fastbert.kernels import gemm as cuda_gemm  # noqa: E402
from siliconlab.units.fastbert.model import FastBert  # noqa: E402
from siliconlab.units.fastbert.units import GraphRunner  # noqa: E402

RESULTS: dict = {}
section = section_runner("check,gemm,sweep,model,host,profile")
DEV = torch.device("cuda")
SMS = torch.cuda.get_device_properties(DEV).multi_processor_count
GEMM = cuda_gemm.SmallGemm(SMS)
#: name: (N, K, split?, epilogue) of BERT-base's four GEMMs
SHAPES = {"qkv": (2304, 768, False, "bias"), "out": (768, 768, True, None), "ffn1": (3072, 768, False, "gelu"),
          "ffn2": (768, 3072, True, None)}  # fmt: skip
LAYERS = 12  # weight copies rotated through, so weights stream from HBM as in the model (170 MB > 50 MB L2)


def graph_us(calls, reps: int = 1) -> float:
    """Median device time per call of a list of thunks captured in one graph (launch gaps as in the model)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for fn in calls:
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            for fn in calls:
                fn()
    return do_bench(graph.replay, warmup=20, rep=150, return_mode="median") * 1e3 / (reps * len(calls))


def operands(m: int, n: int, k: int, dtype=torch.bfloat16, copies: int = LAYERS):
    """copies=LAYERS: weights stream from HBM as in the model without prefetch; copies=1: L2-warm weights."""
    x = torch.randn(m, k, device=DEV, dtype=dtype)
    ws = [torch.randn(n, k, device=DEV, dtype=dtype) / k**0.5 for _ in range(copies)] * (LAYERS // copies)
    bs = [torch.randn(n, device=DEV, dtype=dtype) for _ in range(copies)] * (LAYERS // copies)
    return x, ws, bs


def triton_call(x, w, b, epilogue, split, cfg=None):
    return lambda: GEMM.linear(x, w, b if epilogue else None, gelu=epilogue == "gelu", split=split, config=cfg)


def cublas_call(x, w, b, epilogue, split):
    if epilogue == "gelu":
        return lambda: torch._addmm_activation(b, x, w.t(), use_gelu=True)
    if epilogue == "bias":
        return lambda: F.linear(x, w, b)
    if split and x.shape[0] <= 512 and x.shape[1] == 3072:  # the cuBLAS path's FFN2: 4-way split-K bmm
        m, k = x.shape
        return lambda: torch.bmm(x.view(m, 4, k // 4).transpose(0, 1), w.view(-1, 4, k // 4).permute(1, 2, 0))
    return lambda: F.linear(x, w)


@section("check")
def check():
    worst = 0.0
    for (name, (n, k, split, epi)), m, pdl in itertools.product(SHAPES.items(), (128, 77, 512), (False, True)):
        cuda_kernels.PDL = pdl
        x, ws, bs = operands(m, n, k)
        ref = x.double() @ ws[0].double().t()
        if epi:
            ref = ref + bs[0].double()
        if epi == "gelu":
            ref = F.gelu(ref)
        out = triton_call(x, ws[0], bs[0], epi, split)()
        out = out.double().sum(0) if split else out.double()
        rel = ((out - ref).norm() / ref.norm()).item()
        worst = max(worst, rel)
        assert torch.isfinite(out).all() and rel < 1e-2, (name, m, pdl, rel)
    cuda_kernels.PDL = False
    print(f"   triton GEMMs vs float64: worst relative error {worst:.2e} (all shapes, M 77/128/512, PDL off/on)")
    RESULTS["check_worst_rel"] = worst


@section("gemm")
def gemm():
    rows = []
    for m, copies in itertools.product((32, 128), (LAYERS, 1)):
        for name, (n, k, split, epi) in SHAPES.items():
            x, ws, bs = operands(m, n, k, copies=copies)
            cub = graph_us([cublas_call(x, w, b, epi, split) for w, b in zip(ws, bs)])
            row = {"m": m, "gemm": name, "weights": "stream" if copies > 1 else "L2", "cublas_us": cub,
                   "choice": str(gemm_tiles.choose(m, n, k, SMS, split))}  # fmt: skip
            for pdl in (False, True):
                cuda_kernels.PDL = pdl
                calls = [triton_call(x, w, b, epi, split) for w, b in zip(ws, bs)]
                row["triton_pdl_us" if pdl else "triton_us"] = graph_us(calls)
            cuda_kernels.PDL = False
            rows.append(row)
            print(
                f"   M={m:4d} {name:5s} cublas {cub:6.2f} us  triton {row['triton_us']:6.2f}"
                f"  +pdl {row['triton_pdl_us']:6.2f}  {row['choice']}",
                flush=True,
            )
    RESULTS["gemm"] = rows


@section("sweep")
def sweep():
    best = {}
    for (name, (n, k, split, epi)), copies in itertools.product(SHAPES.items(), (LAYERS, 1)):
        x, ws, bs = operands(128, n, k, copies=copies)
        name = f"{name}/{'stream' if copies > 1 else 'L2'}"
        results = []
        for bm, bn, bk, stages, warps in itertools.product((64,), (32, 64), (64, 128), (3, 4, 5), (4,)):
            for s in (1, 2, 3, 4, 6, 8) if split else (1,):
                if k % (s * bk):
                    continue
                cfg = GemmConfig(bm, bn, bk, s, warps, stages)
                try:
                    us = graph_us([triton_call(x, w, b, epi, split, cfg) for w, b in zip(ws, bs)])
                except Exception as exc:  # e.g. out of shared memory
                    print(f"   {name} {cfg}: {type(exc).__name__}")
                    continue
                results.append((us, cfg))
        results.sort(key=lambda r: r[0])
        for us, cfg in results[:5]:
            print(f"   {name:12s} {us:6.2f} us  {cfg}")
        best[name] = [(us, cfg.__dict__) for us, cfg in results[:5]]
    RESULTS["sweep"] = best


def hf_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig()).eval()


def make_runner(hf, dtype, triton_gemm, pdl, triton_attention=True):
    model = FastBert(hf, "embedding", dtype, "cuda", triton_gemm=triton_gemm, triton_attention=triton_attention)
    cuda_kernels.PDL = pdl  # after the constructor, which sets the device's default
    return GraphRunner(model)


def wall_us(runner, ids, mask, n=1500) -> tuple[float, float]:
    for _ in range(50):
        runner.run(ids, mask)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        runner.run(ids, mask)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6, float(np.percentile(times, 90) * 1e6)


def cosine_min(a, b):
    a, b = a.reshape(a.shape[0], -1).astype(np.float64), b.reshape(b.shape[0], -1).astype(np.float64)
    return float(np.min(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


@section("fp8gelu")
def fp8gelu():
    """The fp8 unit's bias+GELU+quantize pass at B64 S128 (8192 x 3072): exact erf vs tanh.approx, warps."""
    x = torch.randn(8192, 3072, device=DEV, dtype=torch.bfloat16)
    bias = torch.randn(3072, device=DEV, dtype=torch.bfloat16)
    _, q_ref, s_ref = cuda_kernels.bias_gelu(x, bias, torch.bfloat16, quant=True, fast=False)
    ref = q_ref.float() * s_ref
    rows = []
    for fast, warps in itertools.product((False, True), (4, 8, 16)):
        _, q, s = cuda_kernels.bias_gelu(x, bias, torch.bfloat16, quant=True, fast=fast, warps=warps)
        err = ((q.float() * s - ref).norm() / ref.norm()).item()
        us = graph_us([lambda f=fast, w=warps: cuda_kernels.bias_gelu(x, bias, torch.bfloat16, True, f, w)], reps=10)
        rows.append({"fast": fast, "warps": warps, "us": us, "rel_err_vs_erf": err})
        print(f"   fast={fast!s:5} warps={warps:2d}: {us:7.1f} us  rel err vs erf path {err:.2e}", flush=True)
    RESULTS["fp8gelu"] = rows


@section("model")
def model():
    hf = hf_bert()
    rng = np.random.default_rng(0)
    rows = []
    shapes = [(1, 128, True), (1, 32, True), (1, 100, False), (4, 128, True), (64, 128, True)]
    reference = {}
    hf_cuda = hf.to(DEV)
    for b, s, _ in shapes:
        ids = rng.integers(1000, 30000, size=(b, s)).astype(np.int64)
        mask = np.ones((b, s), dtype=np.int64)
        with torch.inference_mode():
            out = hf_cuda(input_ids=torch.from_numpy(ids).to(DEV), attention_mask=torch.from_numpy(mask).to(DEV))
        reference[(b, s)] = (ids, mask, out.last_hidden_state.float().cpu().numpy())
    hf = hf_cuda.cpu()
    variants = []
    for label, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        variants += [(label, dtype, False, False, False), (label, dtype, True, True, False),
                     (label, dtype, True, True, True), (label, dtype, True, False, True)]  # fmt: skip
    for label, dtype, tg, pdl, ta in variants:
        runner = make_runner(hf, dtype, tg, pdl, ta)
        for b, s, time_it in shapes:
            ids, mask, ref = reference[(b, s)]
            out = runner.run(ids, mask)
            cos = cosine_min(out["token_states"], ref)
            row = {"dtype": label, "triton_gemm": tg, "pdl": pdl, "triton_attention": ta, "batch": b, "seq": s,
                   "token_cos_min": cos}  # fmt: skip
            if time_it:
                bucket = runner.buckets[(b, s, True, 0)]
                row["device_us"] = do_bench(bucket.graph.replay, warmup=20, rep=200, return_mode="median") * 1e3
                row["wall_p50_us"], row["wall_p90_us"] = wall_us(runner, ids, mask, {1: 1500, 4: 300}.get(b, 60))
            rows.append(row)
            print(f"   {label} gemm={'triton' if tg else 'cublas'} pdl={pdl!s:5} attn={'triton' if ta else 'sdpa':6} "
                  f"B{b} S{s}: cos {cos:.6f}  device "
                  f"{row.get('device_us', float('nan')):7.1f} us  wall p50 {row.get('wall_p50_us', float('nan')):7.1f}"
                  f" p90 {row.get('wall_p90_us', float('nan')):7.1f}", flush=True)  # fmt: skip
        del runner
        torch.cuda.empty_cache()
    cuda_kernels.PDL = False
    RESULTS["model"] = rows


@section("host")
def host():
    """Where a B1 call's host time goes: replay alone vs + H2D vs + D2H vs the runner's whole run()."""
    from siliconlab.units.cuda import fill_padded, to_host

    hf = hf_bert()
    runner = make_runner(hf, torch.float16, True, os.environ.get("HOST_PDL", "1") == "1")
    ids = np.random.default_rng(1).integers(1000, 30000, size=(1, 128)).astype(np.int64)
    mask = np.ones((1, 128), dtype=np.int64)
    runner.run(ids, mask)
    bucket = runner.buckets[(1, 128, True, 0)]

    def replay():
        bucket.graph.replay()
        torch.cuda.current_stream().synchronize()

    def h2d_replay():
        fill_padded(bucket.host_in, ids, mask, 0)
        bucket.device_in.copy_(bucket.host_tensor, non_blocking=True)
        replay()

    def full_manual():
        fill_padded(bucket.host_in, ids, mask, 0)
        bucket.device_in.copy_(bucket.host_tensor, non_blocking=True)
        bucket.graph.replay()
        to_host([bucket.outputs[0][:1, :128], bucket.outputs[1][:1]])

    res = {}
    for name, fn in (("replay+sync", replay), ("fill+H2D+replay+sync", h2d_replay), ("+D2H (to_host)", full_manual),
                     ("runner.run", lambda: runner.run(ids, mask))):  # fmt: skip
        for _ in range(50):
            fn()
        times = []
        for _ in range(1500):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        res[name] = statistics.median(times) * 1e6
        print(f"   {name:24s} {res[name]:7.1f} us", flush=True)
    res["device_us"] = do_bench(bucket.graph.replay, warmup=20, rep=200, return_mode="median") * 1e3
    print(f"   graph device time        {res['device_us']:7.1f} us")
    RESULTS["host"] = res
    cuda_kernels.PDL = False


@section("profile")
def profile():
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    hf = hf_bert()
    runner = make_runner(hf, torch.float16, True, False)  # PDL off: kernel times without the early-launch waits
    ids = np.random.default_rng(1).integers(1000, 30000, size=(1, 128)).astype(np.int64)
    mask = np.ones((1, 128), dtype=np.int64)
    runner.run(ids, mask)
    bucket = runner.buckets[(1, 128, True, 0)]
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            bucket.graph.replay()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=15)
    print(table)
    RESULTS["profile"] = table
    cuda_kernels.PDL = False


if __name__ == "__main__":
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), f"{SMS} SMs", flush=True)
    RESULTS["device"] = torch.cuda.get_device_name()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as fh:
            json.dump(RESULTS, fh, indent=1, default=str)
