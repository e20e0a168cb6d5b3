"""Greedy decode on one GPU: parity of the CUDA-graph decoder, then HF `generate` vs the graph decoder, one run.

SmolLM2-135M's architecture (LlamaConfig: hidden 576, intermediate 1536, 30 layers, 9 heads / 3 KV heads, vocab
49,152, tied embeddings, rope_theta 100000) with seeded random weights built on the device (no download).

Sections, in order (JSON is rewritten after each, so a run cut short still reports what it finished):
  parity   teacher-forced per-step argmax agreement and logit cosine vs eager fp32 on the fp32 model's own greedy
           continuation; free-run first 16 tokens vs HF `generate` (static cache, same dtype)
  time     HF generate (dynamic cache; static cache with auto-compile off), graph decoder with the eager step,
           graph decoder with the compiled step: batch 1 and 8, prompt 32, 128 new tokens, median of 5;
           TTFT at prompt 256; graph replay device time per token; kernels per step
Usage (device): PYTHONPATH=src python3 benchmarks/gpu/generate_decode.py  -> $OUT/generate_decode.json
All default variants take ~9-10 min on an H100 (110-180 s of compilation per compiled variant): pick a subset with
VARIANTS=name,name (names in VARIANTS below) to stay inside one 10-minute device call.
Knobs (env): COMPILE_MODE (default max-autotune-no-cudagraphs; "" skips the compiled variant), REPEATS (5),
NEW_TOKENS (128), HF_DYNAMIC (1; 0 times HF generate with the static cache only), PROMPT (32), TTFT_PROMPT (256),
BATCHES (1,8), MAX_LEN (512), SMOKE=1 (tiny model; runs on the CPU without graphs, to check this script).
Plain torch + transformers only (the GPU image has no typer/rich/psutil).
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from siliconlab.units.torch.cuda_generate import DEFAULT_COMPILE_MODE, CudaGraphGenerator
from siliconlab.units.torch.static_cache import StaticCacheDecoder

SMOKE = os.environ.get("SMOKE") == "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
REPEATS = int(os.environ.get("REPEATS", "2" if SMOKE else "5"))
NEW = int(os.environ.get("NEW_TOKENS", "16" if SMOKE else "128"))
PROMPT = int(os.environ.get("PROMPT", "32"))
TTFT_PROMPT = int(os.environ.get("TTFT_PROMPT", "64" if SMOKE else "256"))
BATCHES = [int(b) for b in os.environ.get("BATCHES", "1,8").split(",")]
MAX_LEN = int(os.environ.get("MAX_LEN", "512"))
COMPILE_MODE = os.environ.get("COMPILE_MODE", "" if DEVICE == "cpu" else DEFAULT_COMPILE_MODE)
HF_DYNAMIC = os.environ.get("HF_DYNAMIC", "1") == "1"  # 0: time HF generate with the static cache only
FORCED = 32  # teacher-forced steps per prompt
FREE = 16  # free-run tokens compared with HF generate
OUT = Path(os.environ.get("OUT", ".")) / "generate_decode.json"
RESULTS: dict[str, Any] = {"parity": {}, "time": {}, "ttft": {}, "device_step_ms": {}, "kernels_per_step": {}}


def smollm2_config() -> LlamaConfig:
    if SMOKE:
        size = {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 512,
        }
    else:
        size = {
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "vocab_size": 49152,
        }
    return LlamaConfig(
        **size,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        bos_token_id=0,
        eos_token_id=0,
    )


def save() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(RESULTS, indent=2))


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def make_generator(
    model: Any, dtype: torch.dtype, compile_mode: str = "", fuse: bool | str = False, options: dict | None = None
) -> StaticCacheDecoder:
    if DEVICE == "cpu":
        return StaticCacheDecoder(
            model, dtype=dtype, max_batch=max(BATCHES), max_len=MAX_LEN, fuse=fuse, step_options=options
        )
    return CudaGraphGenerator(
        model, dtype=dtype, max_batch=max(BATCHES), max_len=MAX_LEN, compile=compile_mode, fuse=fuse,
        step_options=options,
    )  # fmt: skip


#: name -> (fused Llama step: False / True (SDPA attention) / "reduce" / "triton", compile the step?, extra
#: Inductor config, batch sizes or None = BATCHES, options of the Triton step)
VARIANTS: dict[str, tuple[bool | str, bool, dict[str, Any], list[int] | None, dict[str, Any]]] = {
    "graph-eager-step-bf16": (False, False, {}, None, {}),
    "graph-compiled-step-bf16": (False, True, {}, None, {}),
    "graph-fused-step-bf16": (True, False, {}, None, {}),
    "graph-fused-compiled-bf16": (True, True, {}, None, {}),
    "graph-fused-reduce-step-bf16": ("reduce", False, {}, None, {}),
    "graph-fused-reduce-compiled-bf16": ("reduce", True, {}, None, {}),
    "graph-fused-reduce-compiled-combo-bf16": ("reduce", True, {"combo_kernels": True}, [1], {}),
    "graph-fused-compiled-pdl-bf16": (True, True, {"triton.enable_pdl": True}, [1], {}),
    # Session 5: the Triton step (units/torch/triton_llama.py), the torch-cuda-* units' decode step.
    "graph-triton-bf16": ("triton", False, {}, None, {}),
    "graph-triton-torch-head-bf16": ("triton", False, {}, None, {"lm_head": "torch"}),
    "graph-triton-bn4-bf16": ("triton", False, {}, None, {"block_n": 4}),
    "graph-triton-bn16-bf16": ("triton", False, {}, None, {"block_n": 16}),
    "graph-triton-res32-bf16": ("triton", False, {}, None, {"residual": "fp32"}),
    "graph-triton-res32-pdl-bf16": ("triton", False, {}, None, {"residual": "fp32", "pdl": True}),
    "graph-triton-res32-argmax-bf16": ("triton", False, {}, None, {"residual": "fp32", "argmax": "triton"}),
    "graph-triton-res32-pdl-argmax-bf16": (
        "triton",
        False,
        {},
        None,
        {"residual": "fp32", "pdl": True, "argmax": "triton"},
    ),
}
DEFAULT_VARIANTS = (
    "graph-eager-step-bf16,graph-compiled-step-bf16,graph-fused-step-bf16,graph-fused-compiled-bf16,"
    "graph-fused-reduce-compiled-bf16"
)
SELECTED = [v for v in os.environ.get("VARIANTS", DEFAULT_VARIANTS).split(",") if v]


def hf_generate(model: Any, ids: torch.Tensor, new: int, static: bool) -> torch.Tensor:
    extra = {"cache_implementation": "static", "disable_compile": True} if static else {}
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False, **extra
    )
    return out[:, ids.shape[1] :]


def stats(times: list[float], work: float) -> dict[str, Any]:
    rates = sorted(work / t for t in times)
    med = statistics.median(rates)
    return {
        "tok_s_median": med,
        "tok_s_min": rates[0],
        "tok_s_max": rates[-1],
        "spread_pct": 100 * (rates[-1] - rates[0]) / med,
        "seconds": times,
    }


def timed(fn: Any, repeats: int = REPEATS) -> list[float]:
    fn()  # warm-up (captures / compiles on first use)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


# -- parity ------------------------------------------------------------------------------------------------------
def teacher_forced(
    name: str, gen: StaticCacheDecoder, prompts: torch.Tensor, cont: torch.Tensor, ref_logits: torch.Tensor
) -> None:
    got = gen.forced_logits(prompts, cont)
    agree = (got.argmax(-1) == ref_logits.argmax(-1)).float()
    cos = torch.nn.functional.cosine_similarity(got, ref_logits, dim=-1)
    RESULTS["parity"][name] = {
        "forced_steps": int(agree.numel()),
        "argmax_agreement": float(agree.mean()),
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
    }
    print(
        f"parity {name}: agreement {agree.mean():.4f} over {agree.numel()} steps, "
        f"cosine min {cos.min():.6f} mean {cos.mean():.6f}",
        flush=True,
    )


def free_run(name: str, gen: StaticCacheDecoder, prompts: torch.Tensor) -> None:
    """First FREE greedy tokens vs HF generate (static cache) on the generator's own (same-dtype) model."""
    hf = hf_generate(gen.model, prompts.to(DEVICE), FREE, static=True).cpu()
    ours = gen.generate(prompts, FREE)
    same_rows = [bool(torch.equal(a, b)) for a, b in zip(hf, ours)]
    first_diff = [int((a != b).nonzero()[0]) if not s else None for a, b, s in zip(hf, ours, same_rows)]
    entry = RESULTS["parity"].setdefault(name, {})
    entry[f"free_run_{FREE}_identical_rows"] = f"{sum(same_rows)}/{len(same_rows)}"
    entry["free_run_first_diff"] = first_diff
    print(
        f"parity {name}: free-run {FREE} tokens identical to HF generate(static) in "
        f"{sum(same_rows)}/{len(same_rows)} rows (first differing step per row: {first_diff})",
        flush=True,
    )


def parity(
    base: Any,
    gens: dict[str, StaticCacheDecoder],
    prompts: torch.Tensor,
    with_fp32: bool,
    fuse: bool | str = False,
    options: dict[str, Any] | None = None,
) -> None:
    ref = copy.deepcopy(base).to(DEVICE)
    with torch.no_grad():
        cont = hf_generate(ref, prompts.to(DEVICE), FORCED, static=False)
        full = torch.cat([prompts.to(DEVICE), cont], dim=1)
        ref_logits = ref(full).logits[:, PROMPT - 1 : PROMPT + FORCED - 1].float().cpu()
    cont = cont.cpu()
    fp32_name = {False: "graph-eager-step", True: "graph-fused-step"}.get(fuse, f"graph-fused-{fuse}-step") + "-fp32"
    if options:
        fp32_name = f"{next(iter(gens))}-fp32"
    fp32_options = {key: value for key, value in (options or {}).items() if key != "residual"}
    checked = (
        {**gens, fp32_name: make_generator(ref, torch.float32, fuse=fuse, options=fp32_options)} if with_fp32 else gens
    )
    for name, gen in checked.items():
        teacher_forced(name, gen, prompts, cont, ref_logits)
        free_run(name, gen, prompts[:1])
        free_run(name + "-batch", gen, prompts)
        save()


# -- timing ------------------------------------------------------------------------------------------------------
def time_hf(model: Any, batch: int, ids: torch.Tensor, static: bool) -> dict[str, Any]:
    ids = ids.to(DEVICE)
    full = timed(lambda: hf_generate(model, ids, NEW, static))
    one = timed(lambda: hf_generate(model, ids, 1, static))
    entry = stats(full, batch * NEW)
    decode = statistics.median(full) - statistics.median(one)
    entry["decode_tok_s_est"] = batch * (NEW - 1) / decode if decode > 0 else None
    return entry


def time_graph(gen: StaticCacheDecoder, batch: int, ids: torch.Tensor) -> dict[str, Any]:
    decode_rates: list[float] = []

    def run() -> None:
        gen.generate(ids, NEW)
        decode_rates.append(gen.tokens_per_second or 0.0)

    entry = stats(timed(run), batch * NEW)
    rates = sorted(decode_rates[1:])
    entry["decode_tok_s_median"] = statistics.median(rates)
    entry["decode_tok_s_min"], entry["decode_tok_s_max"] = rates[0], rates[-1]
    return entry


def device_step_ms(gen: StaticCacheDecoder, ids: torch.Tensor, steps: int = 100) -> float | None:
    """Graph replay time per token on the device (CUDA events around `steps` back-to-back replays)."""
    if DEVICE != "cuda":
        return None
    gen.prefill(ids, _reserve=steps + 1)
    slot = gen._current
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        gen._run_step(slot)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / steps


def kernels_per_step(name: str, gen: StaticCacheDecoder, ids: torch.Tensor) -> int | None:
    """Device kernels one decode step launches (the step run un-captured under the profiler); the top kernels by
    time go to RESULTS["kernel_breakdown"]."""
    if DEVICE != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    gen.prefill(ids, _reserve=4)
    slot = gen._current
    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        gen._step_fn(slot.tok, slot.pos, slot.mask, slot.cache, slot.hist, slot.n, slot.write)
        torch.cuda.synchronize()
    kernels = [
        e
        for e in prof.events()
        if e.device_type.name == "CUDA" and "memcpy" not in e.name.lower() and "memset" not in e.name.lower()
    ]
    table: dict[str, list[float]] = {}
    for e in kernels:
        row = table.setdefault(e.name[:90], [0, 0.0])
        row[0] += 1
        row[1] += e.device_time
    top = sorted(table.items(), key=lambda kv: -kv[1][1])[:15]
    RESULTS.setdefault("kernel_breakdown", {})[name] = [
        {"kernel": k, "count": int(c), "total_us": round(t, 1)} for k, (c, t) in top
    ]
    return len(kernels)


def time_ttft(model: Any, gens: dict[str, StaticCacheDecoder], ids: torch.Tensor, hf: bool) -> None:
    for static in ((False, True) if HF_DYNAMIC else (True,)) if hf else ():
        name = "hf-generate-static" if static else "hf-generate-dynamic"
        times = timed(lambda s=static: hf_generate(model, ids.to(DEVICE), 1, s))
        RESULTS["ttft"][name] = {
            "ms_median": 1e3 * statistics.median(times),
            "ms_min": 1e3 * min(times),
            "ms_max": 1e3 * max(times),
        }
    for name, gen in gens.items():
        values = []
        for _ in range(REPEATS + 1):
            gen.prefill(ids, _reserve=1)
            values.append(gen.ttft or 0.0)
        values = values[1:]
        RESULTS["ttft"][name] = {
            "ms_median": 1e3 * statistics.median(values),
            "ms_min": 1e3 * min(values),
            "ms_max": 1e3 * max(values),
        }
    save()


def time_all(
    model: Any,
    gens: dict[str, StaticCacheDecoder],
    prompts: dict[int, torch.Tensor],
    hf: bool,
    batches: list[int] | None = None,
) -> None:
    for batch in batches or BATCHES:
        ids = prompts[batch]
        rows: dict[str, Any] = RESULTS["time"].setdefault(f"batch{batch}", {})
        if hf and HF_DYNAMIC:
            rows["hf-generate-dynamic"] = time_hf(model, batch, ids, static=False)
            save()
        if hf:
            rows["hf-generate-static"] = time_hf(model, batch, ids, static=True)
            save()
        for name, gen in gens.items():
            start = time.perf_counter()
            rows[name] = time_graph(gen, batch, ids)
            rows[name]["wall_s_incl_capture"] = time.perf_counter() - start
            RESULTS["device_step_ms"][f"{name}-batch{batch}"] = device_step_ms(gen, ids)
            RESULTS["kernels_per_step"][f"{name}-batch{batch}"] = kernels_per_step(f"{name}-batch{batch}", gen, ids)
            save()
        print_table(batch)


def print_table(batch: int) -> None:
    print(f"\nbatch {batch}, prompt {PROMPT}, {NEW} new tokens ({DEVICE}: {RESULTS['env']['device']})")
    print(f"{'variant':34s} {'e2e tok/s (min-max)':>28s} {'decode tok/s':>13s} {'step ms':>8s} {'kernels':>8s}")
    for name, row in RESULTS["time"][f"batch{batch}"].items():
        decode = row.get("decode_tok_s_median") or row.get("decode_tok_s_est") or 0.0
        step = RESULTS["device_step_ms"].get(f"{name}-batch{batch}")
        kern = RESULTS["kernels_per_step"].get(f"{name}-batch{batch}")
        span = f"{row['tok_s_median']:9.1f} ({row['tok_s_min']:.0f}-{row['tok_s_max']:.0f})"
        print(f"{name:34s} {span:>28s} {decode:13.1f} {step or 0:8.3f} {kern or 0:8d}", flush=True)


def set_inductor(key: str, value: Any) -> Any:
    """Set a (dotted) torch._inductor.config option; returns the old value."""
    import torch._inductor.config as inductor_config

    *path, last = key.split(".")
    holder = inductor_config
    for part in path:
        holder = getattr(holder, part)
    old = getattr(holder, last)
    setattr(holder, last, value)
    return old


def run_variant(
    name: str,
    base: Any,
    model_bf16: Any,
    prompts: torch.Tensor,
    timing: dict[int, torch.Tensor],
    ttft_ids: torch.Tensor,
) -> None:
    """Parity, then timing, of one decoder variant; a failure is recorded and the run goes on."""
    fuse, compiled, inductor, batches, options = VARIANTS[name]
    if compiled and not COMPILE_MODE:
        return
    start = time.perf_counter()
    saved: dict[str, Any] = {}
    try:
        for key, value in inductor.items():
            saved[key] = set_inductor(key, value)  # AttributeError: this torch lacks the option
        if compiled:
            # Dynamo would otherwise reuse an earlier variant's compiled step (its guards ignore Inductor options:
            # run 2's PDL and run 3's combo-kernel variants were silently the base variant).
            torch._dynamo.reset()
        # The fused step rewires the model's q/k/v and gate/up weights (views of concatenated tensors): give it
        # its own copy so graphs already captured on model_bf16 keep valid addresses.
        model = copy.deepcopy(base).to(DEVICE, torch.bfloat16) if fuse else model_bf16
        gen = make_generator(model, torch.bfloat16, COMPILE_MODE if compiled else "", fuse=fuse, options=options)
        parity(base, {name: gen}, prompts, with_fp32=not compiled and not inductor, fuse=fuse, options=options)
        time_all(model, {name: gen}, timing, hf=False, batches=batches)
        time_ttft(model, {name: gen}, ttft_ids, hf=False)
    except Exception as exc:  # one variant failing must not lose the others
        RESULTS.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"variant {name} failed: {RESULTS['errors'][name]}", flush=True)
    finally:
        for key, value in saved.items():
            set_inductor(key, value)
    RESULTS.setdefault("variant_wall_s", {})[name] = time.perf_counter() - start
    save()


def main() -> None:
    torch.set_float32_matmul_precision("highest")  # the fp32 reference: no TF32
    RESULTS["env"] = {
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "smoke": SMOKE,
        "repeats": REPEATS,
        "new_tokens": NEW,
        "prompt": PROMPT,
        "ttft_prompt": TTFT_PROMPT,
        "max_len": MAX_LEN,
        "compile_mode": COMPILE_MODE,
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    config = smollm2_config()
    torch.manual_seed(0)
    base = LlamaForCausalLM(config).eval()
    base.generation_config.pad_token_id = 0
    params = sum(p.numel() for p in base.parameters())
    RESULTS["env"]["params"] = params
    RESULTS["env"]["weight_bytes_bf16"] = 2 * params
    print(f"model: {params / 1e6:.1f} M parameters; {DEVICE}; {RESULTS['env']}", flush=True)
    rng = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, config.vocab_size, (max(BATCHES), PROMPT), generator=rng)

    model_bf16 = copy.deepcopy(base).to(DEVICE, torch.bfloat16)
    timing_prompts = {b: torch.randint(0, config.vocab_size, (b, PROMPT), generator=rng) for b in BATCHES}
    ttft_ids = torch.randint(0, config.vocab_size, (1, TTFT_PROMPT), generator=rng)
    time_all(model_bf16, {}, timing_prompts, hf=True)
    time_ttft(model_bf16, {}, ttft_ids, hf=True)
    for name in SELECTED:
        run_variant(name, base, model_bf16, prompts, timing_prompts, ttft_ids)
    save()
    print(
        "\nTTFT (prompt",
        TTFT_PROMPT,
        "batch 1, ms median):",
        {k: round(v["ms_median"], 2) for k, v in RESULTS["ttft"].items()},
    )
    print("parity:", json.dumps(RESULTS["parity"]))
    for batch in BATCHES:
        print_table(batch)


if __name__ == "__main__":
    sys.exit(main())
