"""The peer of the torch-cuda-* decoder units on one GPU: Hugging Face `generate`, greedy, static KV cache, bf16.

Same prompts as `siliconlab bench` (bench/generate.py `prompt_ids`: chat questions repeated to length), same
shapes: decode at batch 1 and 8 from a 32-token prompt, 128 new tokens; time to first token at 32/256/1024.
Auto-compile off (`disable_compile=True`): its default, `torch.compile(mode="reduce-overhead")`, fails on this
path (issue 15). Decode tokens/s = B * 127 / (T(128 new) - T(1 new)), medians of REPEATS runs after a warm-up.

  python3 smollm2_baseline.py --model smollm2-chat|DIR --json out.json
  python3 smollm2_baseline.py --save-random DIR --tokenizer TOKENIZER_DIR   # SmolLM2 architecture, random
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import torch

REPEATS = int(os.environ.get("REPEATS", "3"))
NEW = 128


def save_random(path: Path, tokenizer_dir: Path) -> None:
    """SmolLM2-135M's config (hidden 576, 30 layers, 9/3 heads, vocab 49,152) with seeded random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, bos_token_id=1, eos_token_id=2,
        pad_token_id=2, architectures=["LlamaForCausalLM"],
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).eval().save_pretrained(path, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, path / name)


def timed(fn, repeats: int = REPEATS) -> float:
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--json")
    parser.add_argument("--save-random")
    parser.add_argument("--tokenizer")
    args = parser.parse_args()
    if args.save_random:
        save_random(Path(args.save_random), Path(args.tokenizer))
        return
    from siliconlab.bench.generate import prompt_ids
    from siliconlab.models import resolve

    loaded = resolve(args.model).load()
    model = loaded.model.to("cuda", torch.bfloat16).eval()
    vocab = int(model.config.vocab_size)

    def generate(ids: torch.Tensor, new: int) -> None:
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, cache_implementation="static", disable_compile=True,
                           pad_token_id=0)  # fmt: skip

    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "repeats": REPEATS,
                    "transformers": __import__("transformers").__version__, "model": args.model}  # fmt: skip
    for batch in (1, 8):
        ids = torch.from_numpy(prompt_ids(loaded.tokenizer, vocab, batch, 32)).cuda()
        full, one = timed(lambda ids=ids: generate(ids, NEW)), timed(lambda ids=ids: generate(ids, 1))
        result[f"batch{batch}"] = {"e2e_tok_s": batch * NEW / full, "decode_tok_s": batch * (NEW - 1) / (full - one),
                                   "ttft_ms": 1e3 * one}  # fmt: skip
        print(f"HF generate static bf16, batch {batch}: decode {result[f'batch{batch}']['decode_tok_s']:.1f} tok/s, "
              f"e2e {result[f'batch{batch}']['e2e_tok_s']:.1f} tok/s (prompt 32, {NEW} new)", flush=True)  # fmt: skip
    for length in (32, 256, 1024):
        ids = torch.from_numpy(prompt_ids(loaded.tokenizer, vocab, 1, length)).cuda()
        result[f"ttft_ms_prompt{length}"] = 1e3 * timed(lambda ids=ids: generate(ids, 1))
        print(
            f"HF generate static bf16: TTFT {result[f'ttft_ms_prompt{length}']:.1f} ms at {length} tokens", flush=True
        )
    Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
