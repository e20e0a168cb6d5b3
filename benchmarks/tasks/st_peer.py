"""siliconlab's API against sentence-transformers with its best backend, in alternating processes.

What a user on a given CPU would pick instead of siliconlab: `SentenceTransformer(dir, backend=...)` — on an
Intel Xeon that is `backend="openvino"` (its OpenVINO export; on AMX OpenVINO computes in bf16 by default),
else `"onnx"` or `"torch"`. sentence-transformers' onnx/openvino backends need optimum, whose releases pin
transformers below siliconlab's, so the peer runs in *its own* Python environment (`--st-python`). Each round
starts one fresh process per side, in alternating order, on the same real short texts; tokenization is
included on both sides; the ratio is taken per round and reported as a median with its range.

    python benchmarks/tasks/st_peer.py --st-python /path/to/peer/bin/python [--st-backend openvino]
        [--rounds 5] [--texts 200] [--threads 2] [--unit best] [--out result.json]

Two workloads: batch 1 (one `encode([text])` call per text; milliseconds per text) and a list (one
`encode(texts)` call over all texts, batch_size 32 on both sides; texts per second). Embedding agreement
(cosine per text, both L2-normalised) is printed next to the speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _side(args: argparse.Namespace) -> None:
    """One timed process: load, warm up, time both workloads, write figures + embeddings."""
    texts = json.loads(Path(args.texts_file).read_text())
    begin = time.perf_counter()
    if args.side == "api":
        import siliconlab

        model = siliconlab.load("minilm", unit=args.unit, threads=args.threads)
        label = f"siliconlab {model.unit}"

        def encode(batch: list[str]) -> np.ndarray:
            return model.encode(batch, batch_size=32, normalize_embeddings=True)
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(args.threads)
        kwargs = {}
        if args.st_backend == "openvino":
            # OpenVINO reads its thread count from the config; without it, it takes every core it sees.
            kwargs["model_kwargs"] = {"ov_config": {"INFERENCE_NUM_THREADS": str(args.threads)}}
        model = SentenceTransformer(args.model_dir, device="cpu", backend=args.st_backend, **kwargs)
        label = f"sentence-transformers {args.st_backend}"

        def encode(batch: list[str]) -> np.ndarray:
            return model.encode(batch, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)

    load_s = time.perf_counter() - begin
    for text in texts[:10]:
        encode([text])
    encode(texts)
    single = []
    for text in texts:
        start = time.perf_counter()
        encode([text])
        single.append(time.perf_counter() - start)
    lists = []
    for _ in range(args.list_repeats):
        start = time.perf_counter()
        embeddings = encode(texts)
        lists.append(time.perf_counter() - start)
    np.save(args.emb_file, np.asarray(embeddings, dtype=np.float32))
    result = {
        "label": label,
        "load_s": load_s,
        "b1_ms_median": 1e3 * statistics.median(single),
        "b1_ms_total": 1e3 * sum(single) / len(single),
        "list_texts_per_s": len(texts) / statistics.median(lists),
    }
    Path(args.result_file).write_text(json.dumps(result))


def _run_side(side: str, python: str, args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict:
    result_file, emb_file = work / f"{side}.json", work / f"{side}.npy"
    command = [python, __file__, "--side", side, "--texts-file", str(work / "texts.json"), "--threads",
               str(args.threads), "--unit", args.unit, "--st-backend", args.st_backend, "--model-dir",
               args.model_dir, "--result-file", str(result_file), "--emb-file", str(emb_file),
               "--list-repeats", str(args.list_repeats)]  # fmt: skip
    subprocess.run([*args.pin, *command], check=True, env=env)
    result = json.loads(result_file.read_text())
    result["embeddings"] = np.load(emb_file)
    return result


def _driver(args: argparse.Namespace) -> None:
    from siliconlab.bench.machine import machine_info
    from siliconlab.cpu_features import detect
    from siliconlab.data import real_text_stream
    from siliconlab.models.minilm import minilm_directory

    args.model_dir = args.model_dir or str(minilm_directory())
    texts = real_text_stream(args.texts, seed=11)
    work = Path(tempfile.mkdtemp(prefix="st-peer-"))
    (work / "texts.json").write_text(json.dumps(texts))
    api_env = dict(os.environ)
    st_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if args.st_pythonpath:
        st_env["PYTHONPATH"] = args.st_pythonpath
    rounds = []
    for index in range(args.rounds):
        order = ["api", "st"] if index % 2 == 0 else ["st", "api"]
        got = {}
        for side in order:
            python = sys.executable if side == "api" else args.st_python
            got[side] = _run_side(side, python, args, work, api_env if side == "api" else st_env)
        rounds.append(got)
        api, st = got["api"], got["st"]
        print(f"round {index + 1}: {api['label']} B1 {api['b1_ms_median']:.2f} ms, list "
              f"{api['list_texts_per_s']:.0f}/s | {st['label']} B1 {st['b1_ms_median']:.2f} ms, list "
              f"{st['list_texts_per_s']:.0f}/s", flush=True)  # fmt: skip
    cosine = np.sum(rounds[-1]["api"]["embeddings"] * rounds[-1]["st"]["embeddings"], axis=1)
    b1 = [r["st"]["b1_ms_median"] / r["api"]["b1_ms_median"] for r in rounds]
    listed = [r["api"]["list_texts_per_s"] / r["st"]["list_texts_per_s"] for r in rounds]

    def med(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    features = detect()
    print(f"\nmachine: {machine_info()['cpu']} ({features.summary()}); {args.threads} threads; {len(texts)} real "
          f"texts; cosine vs peer min {cosine.min():.5f}, median {np.median(cosine):.5f}")  # fmt: skip
    print("| workload | siliconlab | sentence-transformers | siliconlab / peer (round range) |")
    print("|---|---|---|---|")
    print(f"| batch 1, ms per text (median) | {med('api', 'b1_ms_median'):.2f} ({rounds[0]['api']['label']}) | "
          f"{med('st', 'b1_ms_median'):.2f} ({rounds[0]['st']['label']}) | {statistics.median(b1):.2f}x "
          f"({min(b1):.2f}-{max(b1):.2f}) |")  # fmt: skip
    print(f"| list of {len(texts)}, texts/s | {med('api', 'list_texts_per_s'):.0f} | "
          f"{med('st', 'list_texts_per_s'):.0f} | {statistics.median(listed):.2f}x "
          f"({min(listed):.2f}-{max(listed):.2f}) |")  # fmt: skip
    if args.out:
        strip = [{side: {k: v for k, v in r[side].items() if k != "embeddings"} for side in r} for r in rounds]
        payload = {"machine": machine_info()["cpu"], "cpu": features.summary(), "threads": args.threads,
                   "texts": len(texts), "st_backend": args.st_backend, "cosine_min": float(cosine.min()),
                   "b1_speedup": b1, "list_speedup": listed, "rounds": strip,
                   "load_average": os.getloadavg()}  # fmt: skip
        args.out.write_text(json.dumps(payload, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["api", "st"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", dest="result_file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--emb-file", dest="emb_file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--st-python", default=sys.executable, help="the peer environment's python")
    parser.add_argument("--st-pythonpath", default=None, help="PYTHONPATH for the peer process")
    parser.add_argument("--st-backend", default="openvino", choices=["openvino", "onnx", "torch"])
    parser.add_argument("--model-dir", default=None, help="the MiniLM folder (default: the package's)")
    parser.add_argument("--unit", default="best")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--list-repeats", type=int, default=3)
    parser.add_argument("--pin", default="", help="a prefix command, e.g. 'taskset -c 0,1'")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.pin = args.pin.split()
    if args.side:
        _side(args)
    else:
        _driver(args)


if __name__ == "__main__":
    main()
