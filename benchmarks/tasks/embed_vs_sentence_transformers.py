"""The API's `encode` against sentence-transformers' `encode`: same real texts, same machine, same run.

What a user compares: `siliconlab.load("minilm").encode(texts)` (best unit) versus
`SentenceTransformer(<the same MiniLM folder>).encode(texts)`, tokenization included on both sides, at
batch 1 (one text per call) and batch 32. The two are timed in alternating rounds so a shared machine's
slow and fast phases hit both alike; the ratio's round-by-round range is printed with it. Embeddings are
compared too (cosine per text), and the achieved GOP/s is put against this machine's measured GEMM rate.

    python benchmarks/tasks/embed_vs_sentence_transformers.py [--texts 192] [--rounds 6] [--unit best]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np


def _time_calls(fn, batches: list[list[str]]) -> list[float]:
    """Seconds per call, one call per batch."""
    out = []
    for batch in batches:
        begin = time.perf_counter()
        fn(batch)
        out.append(time.perf_counter() - begin)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=192)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--unit", default="best")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    import siliconlab
    from siliconlab.bench.floor import cpu_fp32_gemm, cpu_int8_gemm, encoder_flops
    from siliconlab.bench.machine import default_threads, machine_info
    from siliconlab.data import real_text_stream
    from siliconlab.models.minilm import minilm_directory

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    texts = real_text_stream(args.texts, seed=11)
    api = siliconlab.load("minilm", unit=args.unit, threads=threads)
    st = SentenceTransformer(str(minilm_directory()), device="cpu")
    config = json.loads((minilm_directory() / "config.json").read_text())
    config_obj = type("Config", (), config)

    def st_encode(batch: list[str]) -> np.ndarray:
        return st.encode(batch, batch_size=len(batch), convert_to_numpy=True, normalize_embeddings=True)

    ours, theirs = api.encode(texts), st_encode(texts)
    cosine = np.sum(ours * theirs, axis=1)
    tokens = [len(ids) for ids in api.loaded.tokenizer(texts)["input_ids"]]
    print(f"machine: {machine_info()['cpu']}, {threads} threads; unit: {api.unit} ({api.loaded.why_unit})")
    print(f"{len(texts)} real texts, median {statistics.median(tokens):.0f} tokens; "
          f"cosine vs sentence-transformers min {cosine.min():.5f} median {np.median(cosine):.5f}")  # fmt: skip

    floors = {"fp32": cpu_fp32_gemm(threads) / 1e9, "int8": cpu_int8_gemm(threads) / 1e9}  # GFLOP/s, GOP/s
    precision = "int8" if "int8" in api.unit else "fp32"
    rows = {}
    for batch in (1, 32):
        groups = [texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)]
        # The useful work: each text at its own length (no padding). The API groups texts by length and runs
        # each int8 text alone (tasks/pipeline.py), so counting a padded batch would credit it work not done.
        flops = sum(encoder_flops(config_obj, 1, len(api.loaded.tokenizer(t)["input_ids"])) for g in groups for t in g)
        _time_calls(api.encode, groups[:2]), _time_calls(st_encode, groups[:2])  # warm-up both
        per_round = []
        for _ in range(args.rounds):
            a = sum(_time_calls(api.encode, groups))
            b = sum(_time_calls(st_encode, groups))
            per_round.append((a, b))
        ratios = [b / a for a, b in per_round]
        api_s, st_s = statistics.median(a for a, _ in per_round), statistics.median(b for _, b in per_round)
        rows[batch] = {
            "api_ms_per_call": api_s * 1e3 / len(groups),
            "st_ms_per_call": st_s * 1e3 / len(groups),
            "speedup_median": statistics.median(ratios),
            "speedup_range": [min(ratios), max(ratios)],
            "api_gops": flops / api_s / 1e9,
            "floor_gops": floors[precision],
            "pct_of_floor": 100 * flops / api_s / 1e9 / floors[precision],
        }
    print(f"GEMM floor measured here: fp32 {floors['fp32']:.0f} GFLOP/s, int8 {floors['int8']:.0f} GOP/s\n")
    print("| batch | API ms/call | sentence-transformers ms/call | speedup (round range) | API GOP/s | % of floor |")
    print("|---|---|---|---|---|---|")
    for batch, row in rows.items():
        low, high = row["speedup_range"]
        print(f"| {batch} | {row['api_ms_per_call']:.2f} | {row['st_ms_per_call']:.2f} | "
              f"{row['speedup_median']:.2f}x ({low:.2f}-{high:.2f}) | {row['api_gops']:.0f} | "
              f"{row['pct_of_floor']:.0f} % ({precision}) |")  # fmt: skip
    if args.out:
        payload = {"unit": api.unit, "threads": threads, "texts": len(texts), "cosine_min": float(cosine.min()),
                   "load_average": os.getloadavg(), "floors": floors, "rows": rows}  # fmt: skip
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
