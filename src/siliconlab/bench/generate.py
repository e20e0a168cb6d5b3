"""`siliconlab bench <generative model>`: time to first token and decode tokens/s per decoder unit.

Each unit runs in its own Python process (`python -m siliconlab.bench.generate`), so its peak memory is its
own and a crash costs that unit only; the parent converts (or reuses) every artifact first, so workers only
load. Workloads are `Generation` rows (bench/workloads.py): TTFT is timed on prompts of 32/256/1024 real
tokens (chatterbot-corpus questions, repeated to length; random ids for architecture-only models) at batch
1, repeated for p50/p90; decode speed is greedy `generate` of a fixed number of new tokens (no early stop) at
batch 1 and 8, each step's arrival timestamped. The document is the bench result schema (siliconlab.bench/4)
with "generation" rows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.bench.results import RESULT_SCHEMA
from siliconlab.bench.workloads import Generation
from siliconlab.version import __version__

TTFT_PROMPTS = (32, 256, 1024)
DECODE_BATCHES = (1, 8)


def generation_workloads(quick: bool, max_length: int) -> list[Generation]:
    """TTFT rows (1 new token) at each prompt length, then decode rows at batch 1 and 8 (32-token prompt)."""
    new_tokens = 32 if quick else 128
    rows = [Generation(1, n, 1) for n in TTFT_PROMPTS if n + 1 <= max_length]
    rows += [Generation(b, 32, new_tokens) for b in DECODE_BATCHES]
    return rows


def prompt_ids(tokenizer: Any, vocab: int, batch: int, length: int) -> np.ndarray:
    """Exactly `length` real tokens (chat questions, in order, repeated) per row; seeded random ids without a
    tokenizer."""
    if tokenizer is None:
        return np.random.default_rng(length).integers(0, vocab, (batch, length), dtype=np.int64)
    from siliconlab.data.chat import chat_questions

    ids: list[int] = []
    for question in chat_questions():
        ids += tokenizer(" " + question, add_special_tokens=False)["input_ids"]
        if len(ids) >= length:
            break
    while len(ids) < length:
        ids += ids
    return np.tile(np.asarray(ids[:length], dtype=np.int64), (batch, 1))


def time_workload(runner: Any, tokenizer: Any, vocab: int, workload: Generation, repeats: int) -> dict[str, Any]:
    """One row: TTFT samples over `repeats` runs (decode rows: one run, every step timed)."""
    ids = prompt_ids(tokenizer, vocab, workload.batch, workload.prompt_tokens)
    runner.generate(ids[:, : min(8, ids.shape[1])], 2)  # warm-up: first-call allocations and graph set-up
    ttft, rates, steps_ms = [], [], []
    for _ in range(repeats if workload.new_tokens == 1 else 1):
        stamps: list[float] = []
        begin = time.perf_counter()
        runner.generate(ids, workload.new_tokens, lambda _tokens, s=stamps: s.append(time.perf_counter()))
        ttft.append((stamps[0] - begin) * 1e3)
        if len(stamps) > 1:
            gaps = np.diff(stamps)
            steps_ms += list(gaps * 1e3)
            rates.append(workload.batch * (len(stamps) - 1) / (stamps[-1] - stamps[0]))
    row: dict[str, Any] = {
        "workload": workload.kind,
        "workload_label": workload.label,
        "batch": workload.batch,
        "seq": workload.prompt_tokens,
        "new_tokens": workload.new_tokens,
        "ttft_ms": {"p50": float(np.percentile(ttft, 50)), "p90": float(np.percentile(ttft, 90)), "n": len(ttft)},
    }
    if rates:
        row["decode_tokens_per_s"] = float(np.mean(rates))
        row["decode_step_ms"] = {"p50": float(np.percentile(steps_ms, 50)), "p90": float(np.percentile(steps_ms, 90))}
    return row


def worker(spec: dict[str, Any]) -> None:
    """The per-unit process: load the converted artifact, time each workload, print one JSON row per line."""
    from transformers import AutoConfig, AutoTokenizer

    from siliconlab.convert.generate import load_decoder
    from siliconlab.units.decoders import get_decoder_unit

    unit = get_decoder_unit(spec["unit"], spec.get("seq2seq", False))
    artifact = Path(spec["artifact_dir"])
    runner = load_decoder(artifact, unit, spec["threads"])
    tokenizer = AutoTokenizer.from_pretrained(artifact, trust_remote_code=False) if spec["has_tokenizer"] else None
    vocab = int(AutoConfig.from_pretrained(artifact, trust_remote_code=False).vocab_size)
    print(json.dumps({"event": "loaded", "rss_mb": _peak_mb()}), flush=True)
    for index, data in enumerate(spec["workloads"]):
        workload = Generation(**{k: v for k, v in data.items() if k != "kind"})
        row = time_workload(runner, tokenizer, vocab, workload, spec["repeats"])
        print(json.dumps({"event": "row", "index": index, **row, "peak_rss_mb": _peak_mb()}), flush=True)


def _peak_mb() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def run_bench(source: Any, units: list[Any], cache: Path, threads: int, quick: bool,
              on_row: Any = None) -> dict[str, Any]:  # fmt: skip
    """Convert-or-reuse each unit, then one worker process per unit; the result document with every row."""
    from siliconlab.bench.machine import machine_info
    from siliconlab.convert.generate import GenerativeConverter
    from siliconlab.models.generative import context_length
    from siliconlab.units.decoders import is_seq2seq

    workloads = generation_workloads(quick, context_length(source.config))
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "siliconlab_version": __version__,
        "model": source.name,
        "model_source": source.source,
        "architecture_only": source.architecture_only,
        "machine": machine_info(),
        "settings": {"threads": threads, "units": [u.name for u in units], "quick": quick, "decoding": "greedy",
                     "workloads": [w.to_json() for w in workloads], "isolation": "one process per unit, in turn"},
        "results": [],
        "failures": [],
        "complete": False,
    }  # fmt: skip
    converter = GenerativeConverter(source, cache, threads)
    for unit in units:
        outcome = converter.convert_unit(unit)
        if not outcome.ok:
            result["failures"].append({"unit": unit.name, "error": outcome.error})
            continue
        spec = {"unit": unit.name, "artifact_dir": str(outcome.artifact_dir), "threads": threads,
                "seq2seq": is_seq2seq(source.config),
                "has_tokenizer": not source.architecture_only, "repeats": 3 if quick else 7,
                "workloads": [w.to_json() for w in workloads]}  # fmt: skip
        for row in _run_worker(spec):
            if "error" in row:
                result["failures"].append({"unit": unit.name, "error": row["error"]})
                break
            row.update({"unit": unit.name, "model": source.name, "precision": unit.precision, "device": unit.device,
                        "parity": outcome.manifest.get("parity")})  # fmt: skip
            result["results"].append(row)
            if on_row is not None:
                on_row(row)
    result["complete"] = True
    return result


def _run_worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]))
    process = subprocess.run([sys.executable, "-m", "siliconlab.bench.generate", json.dumps(spec)],
                             capture_output=True, text=True, env=env, check=False)  # fmt: skip
    rows = []
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.pop("event") == "row":
                event.pop("index")
                rows.append(event)
    if process.returncode != 0:
        lines = [line for line in process.stderr.strip().splitlines() if line.strip()]
        rows.append({"error": f"worker exited {process.returncode}: {lines[-1] if lines else 'no message'}"})
    return rows


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
