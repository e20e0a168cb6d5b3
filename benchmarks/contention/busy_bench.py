"""The busy-machine case, reproduced: `siliconlab bench` beside a bounded CPU hog, before and after the fix.

"Before" is OpenMP's default wait policy in the unit processes (`--omp-wait-policy default`), "after" the
bench's default (`passive`). Each runs on a quiet machine and beside `--hogs` spinning processes (bounded:
they stop by themselves). For each run it prints the torch baseline's p50, the int8 unit's p50, the speedup
with its round range, and whether the bench flagged the rows. It also times the torch model directly (a
fresh process, 2 threads, default policy) — what the baseline should agree with on a quiet machine.

    python benchmarks/contention/busy_bench.py [--model minilm|tiny] [--hogs 2] [--policies default,passive]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = "the comic performances are all spot on , especially lee ross's turn as ken ."

DIRECT = r"""
import json, statistics, sys, time, torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, AutoConfig
path, text = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
config = AutoConfig.from_pretrained(path)
factory = AutoModelForSequenceClassification if "SequenceClassification" in str(config.architectures) else AutoModel
model = factory.from_pretrained(path).eval()
batch = AutoTokenizer.from_pretrained(path)([text], return_tensors="pt")
with torch.inference_mode():
    for _ in range(20):
        model(**batch)
    samples, end = [], time.perf_counter() + 4
    while time.perf_counter() < end:
        t = time.perf_counter(); model(**batch); samples.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"p50": statistics.median(samples), "n": len(samples)}))
"""


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def tiny_classifier(folder: Path) -> Path:
    """A random BertForSequenceClassification, hidden 32, 2 layers, with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from siliconlab.models.minilm import tokenizer_directory

    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_directory()).save_pretrained(folder)
    return folder


def run(cmd: list[str], hogs: int, limit_s: float = 900) -> subprocess.CompletedProcess:
    procs = []
    if hogs:
        stop_at = time.time() + limit_s  # bounded even if this script is killed
        procs = [mp.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(hogs)]
        for proc in procs:
            proc.start()
        time.sleep(2)  # let the load settle in
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s)
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def bench_row(model: str, policy: str, hogs: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "siliconlab", "bench", model, "--units", "onnxruntime-cpu-int8", "--text", TEXT,
           "--omp-wait-policy", policy, "--no-floor", "--no-charts", "--out", str(out), "--threads", "2"]  # fmt: skip
    done = run(cmd, hogs)
    files = sorted(out.glob("bench-*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise RuntimeError(f"bench failed: {done.stderr[-800:]}")
    result = json.loads(files[-1].read_text())
    rows = {r["unit"]: r for r in result["results"]}
    torch_row, int8 = rows["torch-cpu-fp32"], rows["onnxruntime-cpu-int8"]
    spread = int8.get("speedup_rounds") or {}
    return {
        "torch_p50": torch_row["latency_ms"]["p50"],
        "int8_p50": int8["latency_ms"]["p50"],
        "speedup": int8["speedup"],
        "range": (spread.get("min"), spread.get("max")),
        "flagged": bool((int8.get("contention") or {}).get("flagged")),
        "other_cores": (int8.get("contention") or {}).get("other_cores", {}).get("mean"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="minilm, or 'tiny' for a random hidden-32 classifier")
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--policies", default="default,passive")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="busy-bench-"))
    model = str(tiny_classifier(work / "tiny")) if args.model == "tiny" else args.model
    if args.model == "minilm":
        from siliconlab.models.minilm import minilm_directory

        direct_path = str(minilm_directory())
    else:
        direct_path = model
    print(f"load average at start {os.getloadavg()[0]:.2f}; model {args.model}; hogs {args.hogs}")
    direct = [json.loads(run([sys.executable, "-c", DIRECT, direct_path, TEXT], 0).stdout)["p50"] for _ in range(2)]
    print(f"direct torch timing (fresh process, 2 threads, default OpenMP policy, quiet): "
          f"{statistics.median(direct):.2f} ms")  # fmt: skip
    print("| OpenMP policy | machine | torch p50 ms | int8 p50 ms | speedup (round range) | flagged | other cores |")
    print("|---|---|---|---|---|---|---|")
    for policy in args.policies.split(","):
        for hogs in (0, args.hogs):
            out = work / f"{policy}-{hogs}"
            row = bench_row(model, policy, hogs, out)
            low, high = row["range"]
            spread = f" ({low:.2f}–{high:.2f})" if low else ""
            other = f"{row['other_cores']:.2f}" if row["other_cores"] is not None else "n/a"
            print(f"| {policy} | {'busy' if hogs else 'quiet'} | {row['torch_p50']:.2f} | {row['int8_p50']:.2f} | "
                  f"{row['speedup']:.2f}x{spread} | {row['flagged']} | {other} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
