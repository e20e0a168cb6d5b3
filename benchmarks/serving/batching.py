"""Dynamic batching on vs off: throughput and latency of `siliconlab serve minilm` at a few concurrencies.

Two servers run side by side (batching on: --max-batch 32 --max-queue-delay-us 500; off: --max-batch 1), and
the steps alternate between them (on c1, off c1, on c4, ...) so a shared machine's busy and quiet phases fall
on both alike. Each step is a closed loop: `c` threads, each with its own tritonclient HTTP connection, send
one real SMS text per request for a fixed time. Every answer is checked against that text's single-request
answer from the batching-off server (cosine >= 0.99: int8 answers shift slightly with their batch neighbours).
The load generator runs on the same machine as the server.

    python benchmarks/serving/batching.py [--unit onnxruntime-cpu-int8] [--seconds 8] [--concurrency 1,4,16]
        [--configs on:32:500,off:1:0] [--cache DIR] [--out benchmarks/serving/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

READY = "Ctrl-C or SIGTERM drains and stops."


def start_server(unit: str, max_batch: int, delay_us: int, cache: Path | None) -> tuple[subprocess.Popen, str]:
    from siliconlab.serve.config import free_port

    port = free_port()
    command = [sys.executable, "-m", "siliconlab", "serve", "minilm", "--unit", unit, "--http-port", str(port),
               "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--max-batch", str(max_batch),
               "--max-queue-delay-us", str(delay_us)]  # fmt: skip
    command += ["--cache", str(cache)] if cache else []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if READY in line:
            return process, f"127.0.0.1:{port}"
    raise SystemExit(f"server {command} did not start")


def embed_one(client: object, text: str) -> np.ndarray:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("text", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
    return client.infer("minilm", [tensor], outputs=[httpclient.InferRequestedOutput("embedding")]).as_numpy(
        "embedding"
    )[0]


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the server, tritonserver, the backend stubs)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def closed_loop(url: str, texts: list[str], reference: np.ndarray, concurrency: int, seconds: float, pid: int) -> dict:
    """`concurrency` clients back to back for `seconds`: latencies, errors, wrong answers, server CPU per request.

    Server CPU per request is the robust figure on a shared machine: wall-clock latency there includes the
    time other processes hold the cores, CPU time does not.
    """
    import tritonclient.http as httpclient

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors, wrong = [0] * concurrency, [0] * concurrency
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        client = httpclient.InferenceServerClient(url, network_timeout=120)
        position = index
        while time.perf_counter() < stop_at:
            text_index = position % len(texts)
            position += concurrency
            begin = time.perf_counter()
            try:
                vector = embed_one(client, texts[text_index])
            except Exception:  # counted; the loop goes on
                errors[index] += 1
                continue
            latencies[index].append(time.perf_counter() - begin)
            if float(vector @ reference[text_index]) < 0.99:
                wrong[index] += 1
        client.close()

    cpu_before = tree_cpu_s(pid)
    begin = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    cpu = tree_cpu_s(pid) - cpu_before
    flat = np.array([x for per in latencies for x in per]) * 1e3
    return {"concurrency": concurrency, "requests": int(flat.size), "seconds": round(elapsed, 2),
            "throughput_rps": round(flat.size / elapsed, 1), "p50_ms": round(float(np.percentile(flat, 50)), 1),
            "p99_ms": round(float(np.percentile(flat, 99)), 1), "errors": sum(errors), "wrong": sum(wrong),
            "server_cpu_ms_per_request": round(cpu * 1e3 / max(flat.size, 1), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", default="onnxruntime-cpu-int8")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--configs", default="on:32:500,off:1:0", help="name:max_batch:delay_us,... (unique names)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--cache", type=Path, default=None, help="artifact store (default: siliconlab's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import tritonclient.http as httpclient

    from siliconlab.data.tasks import split

    texts = split("spam", "test", limit=args.texts)["text"].tolist()
    configs = [(name, int(b), int(d)) for name, b, d in (c.split(":") for c in args.configs.split(","))]
    servers = {name: start_server(args.unit, batch, delay, args.cache) for name, batch, delay in configs}
    try:
        first = httpclient.InferenceServerClient(servers[configs[-1][0]][1])
        reference = np.stack([embed_one(first, t) for t in texts])  # single requests: no batch neighbours
        first.close()
        rows = []
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for name, batch, delay in configs:
                row = closed_loop(servers[name][1], texts, reference, concurrency, args.seconds, servers[name][0].pid)
                rows.append({"batching": name, "max_batch": batch, "max_queue_delay_us": delay, **row})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
        for process, _ in servers.values():
            process.wait(timeout=60)
    load = os.getloadavg()
    result = {"unit": args.unit, "texts": "SMS spam test split (real short texts), one per request",
              "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
              "load_average_after": [round(x, 1) for x in load], "seconds_per_step": args.seconds,
              "rows": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"batching-{stamp}.json").write_text(json.dumps(result, indent=2))
    lines = [
        "| batching | concurrency | req/s | p50 ms | p99 ms | server CPU ms/req | errors | wrong |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['batching']} (max batch {r['max_batch']}, delay {r['max_queue_delay_us']} µs) | "
              f"{r['concurrency']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['server_cpu_ms_per_request']} | {r['errors']} | "
              f"{r['wrong']} |" for r in rows]  # fmt: skip
    (args.out / f"batching-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"load average after: {load}")


if __name__ == "__main__":
    main()
