"""The load test's record: JSON (everything), Markdown (the table and the caveats) and a PNG chart."""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from siliconlab.version import __version__


def header(target: str, model: str, protocol: str, managed: bool, plan: dict[str, Any]) -> dict[str, Any]:
    """Where and how the figures were measured, including the caveat that the client shares the machine."""
    import psutil

    from siliconlab.bench.machine import cpu_model
    from siliconlab.serve.loadtest.target import is_loopback

    cores = psutil.cpu_count(logical=True)
    same = managed or is_loopback(target)
    return {
        "tool": f"siliconlab {__version__} loadtest",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": target,
        "model": model,
        "protocol": protocol,
        "server_started_by_loadtest": managed,
        "machine": {"cpu": cpu_model(), "cores_logical": cores, "os": f"{platform.system()} {platform.release()}"},
        "load_average_before": list(os.getloadavg()),
        "load_generator": (
            f"runs on the same machine as the server ({cores} logical cores): its CPU time is taken from the server's"
            if same
            else "runs on another machine than the server"
        ),
        "plan": plan,
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(record: dict[str, Any]) -> str:
    head = record["header"]
    lines = [
        f"# Load test: {head['model']} at {head['target']} ({head['protocol']})",
        "",
        f"{head['date']}, {head['machine']['cpu']}, {head['machine']['cores_logical']} logical cores; "
        f"load average before: {', '.join(f'{x:.2f}' for x in head['load_average_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in record.get('load_average_after', []))}.",
        f"The load generator {head['load_generator']}.",
        "Latencies are client-side, of answered requests; throughput counts answered requests per second.",
        "Server columns are Triton's statistics over the step, per request: time queued, time computing.",
        "",
        "| mode | level | sent | answered | req/s | p50 ms | p90 ms | p99 ms | errors | lost | wrong | min cos "
        "| queue ms | compute ms | batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        level = f"c={row['concurrency']}" if row["mode"] == "closed" else f"{row['rate']:g}/s"
        errors = ", ".join(f"{k} {v}" for k, v in row["errors"].items()) or "0"
        server = row.get("server") or {}
        compute = sum(server.get(k, 0.0) for k in ("compute_input_ms", "compute_infer_ms", "compute_output_ms"))
        lines.append(
            f"| {row['mode']} | {level} | {row['sent']} | {row['answered']} | {_fmt(row['throughput_rps'])} "
            f"| {_fmt(row['p50_ms'])} | {_fmt(row['p90_ms'])} | {_fmt(row['p99_ms'])} | {errors} "
            f"| {row['accepted_lost']} | {row['wrong'] if record['header']['plan'].get('check') else 'not checked'} "
            f"| {_fmt(row['min_cosine'], 6) if record['header']['plan'].get('check') else '-'} "
            f"| {_fmt(server.get('queue_ms'), 2)} | {_fmt(compute if server else None, 2)} "
            f"| {_fmt(server.get('mean_batch'), 2)} |"
        )
    if record.get("info", {}).get("statistics_error"):
        lines += ["", f"Server columns empty: {record['info']['statistics_error']}."]
    firsts = {kind: msg for row in record["rows"] for kind, msg in row.get("first_error", {}).items()}
    if firsts:
        lines += ["", "First message of each error kind:", ""]
        lines += [f"- {kind}: {msg}" for kind, msg in sorted(firsts.items())]
    return "\n".join(lines) + "\n"


def chart(record: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p99 against concurrency (closed loop) and against the offered rate (open loop)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(mode, [r for r in record["rows"] if r["mode"] == mode]) for mode in ("closed", "open")]
    groups = [(mode, rows) for mode, rows in groups if rows]
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 4.2), squeeze=False)
    for ax, (mode, rows) in zip(axes[0], groups):
        key = "concurrency" if mode == "closed" else "rate"
        xs = [r[key] for r in rows]
        ax.plot(xs, [r["throughput_rps"] for r in rows], "o-", color="tab:blue", label="throughput (req/s)")
        ax.set_xlabel("concurrent requests (closed loop)" if mode == "closed" else "offered rate, req/s (open loop)")
        ax.set_ylabel("answered req/s", color="tab:blue")
        if mode == "closed" and len(xs) > 1:
            ax.set_xscale("log", base=2)
        right = ax.twinx()
        right.plot(xs, [r["p99_ms"] for r in rows], "s--", color="tab:red", label="p99 latency (ms)")
        right.set_ylabel("p99 ms", color="tab:red")
        ax.set_title(f"{record['header']['model']} ({record['header']['protocol']}), {mode} loop")
        ax.grid(alpha=0.3)
    fig.suptitle("load generator on the same machine" if "same" in record["header"]["load_generator"] else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write(record: dict[str, Any], out: Path) -> list[Path]:
    """loadtest.json, loadtest.md, loadtest.png under `out` (written whole, step rows included as measured)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = out / "loadtest.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float))
    tmp.replace(json_path)
    written.append(json_path)
    md_path = out / "loadtest.md"
    md_path.write_text(markdown(record))
    written.append(md_path)
    png = chart(record, out / "loadtest.png")
    if png:
        written.append(png)
    return written
