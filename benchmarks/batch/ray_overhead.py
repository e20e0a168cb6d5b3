"""What Ray itself costs per node: memory and CPU of an idle local cluster of 1 and of N nodes (one host).

Starts `ray.cluster_utils.Cluster` (head + N-1 workers, `num_cpus=1` each, no dashboard), connects a driver,
lets it settle, then sums RSS and USS (memory the process alone holds; shared libraries counted once) and CPU
time over a quiet window for every process Ray started (gcs_server, raylets, the log monitor, idle workers...),
grouped by process name. With `--actor MODEL`, one `ChunkActor` per node then loads the unit and is measured
the same way (what a node adds once the model is in). The driver process is not counted.

    PYTHONPATH=src python benchmarks/batch/ray_overhead.py --nodes 1 3 [--actor minilm --unit onnxruntime-cpu-int8]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from typing import Any

import psutil


def ray_processes() -> list[psutil.Process]:
    """Every descendant of this (driver) process: the cluster's daemons and workers."""
    return psutil.Process(os.getpid()).children(recursive=True)


def sample(window_s: float) -> dict[str, Any]:
    """RSS/USS now and CPU % over `window_s`, per process name and in total."""
    processes = ray_processes()
    before = {}
    for proc in processes:
        try:
            times = proc.cpu_times()
            before[proc.pid] = times.user + times.system
        except psutil.Error:
            pass
    time.sleep(window_s)
    groups: dict[str, dict[str, float]] = defaultdict(
        lambda: {"count": 0, "rss_mb": 0.0, "uss_mb": 0.0, "cpu_pct": 0.0}
    )
    for proc in processes:
        try:
            name = proc.name()
            memory = proc.memory_full_info()
            times = proc.cpu_times()
        except psutil.Error:
            continue
        group = groups[name]
        group["count"] += 1
        group["rss_mb"] += memory.rss / 2**20
        group["uss_mb"] += memory.uss / 2**20
        group["cpu_pct"] += 100 * (times.user + times.system - before.get(proc.pid, 0.0)) / window_s
    total = {key: sum(g[key] for g in groups.values()) for key in ("count", "rss_mb", "uss_mb", "cpu_pct")}
    return {"total": total, "by_name": {k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in groups.items()}}


def measure(nodes: int, settle_s: float, window_s: float, actor: str | None, unit: str) -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    began = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING", configure_logging=False)
        started = time.perf_counter() - began
        time.sleep(settle_s)
        figures: dict[str, Any] = {"nodes": nodes, "start_s": round(started, 1), "idle": sample(window_s)}
        if actor:
            from siliconlab.batch.ray_placement import ChunkActor, alive_nodes, plan

            remote = ray.remote(ChunkActor)
            slots = plan(alive_nodes(), unit, gpu=False)
            loading = time.perf_counter()
            actors = [remote.options(**s.options()).remote(actor, unit, 8192, s.threads) for s in slots]
            ray.get([a.describe.remote() for a in actors])
            figures["actors_load_s"] = round(time.perf_counter() - loading, 1)
            time.sleep(settle_s)
            figures["with_actors"] = sample(window_s)
        return figures
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after start before sampling")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of CPU sampling")
    parser.add_argument("--actor", default=None, help="also load one ChunkActor per node with this model")
    parser.add_argument("--unit", default="onnxruntime-cpu-int8")
    args = parser.parse_args()
    results = [measure(n, args.settle, args.window, args.actor, args.unit) for n in args.nodes]
    for figures in results:
        print(json.dumps(figures, indent=1))
    for figures in results:
        for phase in ("idle", "with_actors"):
            if phase in figures:
                t = figures[phase]["total"]
                print(
                    f"{figures['nodes']} node(s) {phase}: {t['count']:.0f} processes, RSS {t['rss_mb']:.0f} MB, "
                    f"USS {t['uss_mb']:.0f} MB, CPU {t['cpu_pct']:.1f} % (start {figures['start_s']} s)"
                )


if __name__ == "__main__":
    main()
