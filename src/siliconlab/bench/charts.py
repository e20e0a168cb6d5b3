"""PNG charts with matplotlib: latency bars with p50/p90 and speedups, latency vs length, throughput vs batch."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def latency_bars(result: dict[str, Any], path: Path) -> Path | None:
    """One bar per unit at the first shape: p50 bar, whisker up to p90, speedup label — the chart to post."""
    rows = [r for r in result["results"] if r["workload"] != "budget"]
    if not rows:
        return None
    first = rows[0]
    shape = (first["workload"], first["batch"], first["seq"])
    chosen = sorted(
        (r for r in rows if (r["workload"], r["batch"], r["seq"]) == shape), key=lambda r: r["latency_ms"]["p50"]
    )
    names = [r["unit"] for r in chosen]
    p50 = [r["latency_ms"]["p50"] for r in chosen]
    p90 = [r["latency_ms"]["p90"] for r in chosen]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(chosen) + 1.5))
    ax.barh(names, p50, xerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90)]], color="#4C72B0", capsize=4)
    for y, row in enumerate(chosen):
        speed = f"  {row['speedup']:.2f}x" if row.get("speedup") else ""
        ax.text(row["latency_ms"]["p90"], y, f" {row['latency_ms']['p50']:.2f} ms{speed}", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("latency, ms (bar = p50, whisker = p90)")
    ax.set_title(f"{result['model']} {first.get('workload_label', '')} — {result['machine']['cpu']}", fontsize=10)
    ax.set_xlim(0, max(p90) * 1.45)
    return _save(fig, path)


def _series(result: dict[str, Any], x_key: str, fixed_key: str) -> dict[str, list[tuple[int, float, float]]]:
    rows = [r for r in result["results"] if r["workload"] == "fixed"]
    if not rows:
        return {}
    fixed_value = rows[0][fixed_key]
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for row in rows:
        if row[fixed_key] == fixed_value:
            series[row["unit"]].append((row[x_key], row["latency_ms"]["p50"], row["throughput"]["sequences_per_s"]))
    return {unit: sorted(points) for unit, points in series.items() if len(points) > 1}


def _line_chart(
    result: dict[str, Any], path: Path, x_key: str, fixed_key: str, y_index: int, labels: tuple[str, str, str]
) -> Path | None:
    """One line per unit over `x_key` at the first value of `fixed_key`; y is p50 (1) or seq/s (2)."""
    series = _series(result, x_key, fixed_key)
    if not series:
        return None
    xlabel, ylabel, title = labels
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for unit, points in series.items():
        ax.plot([p[0] for p in points], [p[y_index] for p in points], marker="o", label=unit)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale("log", base=2)
    if y_index == 1:
        ax.set_yscale("log")
    ax.set_title(f"{result['model']}: {title}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latency_vs_length(result: dict[str, Any], path: Path) -> Path | None:
    labels = ("sequence length (tokens)", "p50 latency, ms", "latency vs sequence length")
    return _line_chart(result, path, "seq", "batch", 1, labels)


def throughput_vs_batch(result: dict[str, Any], path: Path) -> Path | None:
    return _line_chart(result, path, "batch", "seq", 2, ("batch size", "sequences / s (at p50)", "throughput vs batch"))


def write_charts(result: dict[str, Any], stem: Path) -> list[Path]:
    made = [
        latency_bars(result, stem.with_name(stem.name + "-latency.png")),
        latency_vs_length(result, stem.with_name(stem.name + "-latency-vs-length.png")),
        throughput_vs_batch(result, stem.with_name(stem.name + "-throughput-vs-batch.png")),
    ]
    return [path for path in made if path is not None]
