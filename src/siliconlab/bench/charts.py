"""PNG charts with matplotlib: latency per unit for every workload, latency vs length, throughput vs batch.

Every row of a result appears in at least one chart, with its workload in the panel title; titles name the
device that did the work (the GPU for CUDA units, else the CPU) and the baseline the speedups are against.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from siliconlab.bench.report import contention_notes, device_names, speedup_text  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def workload_label(row: dict[str, Any]) -> str:
    return row.get("workload_label") or f"B{row['batch']} S{row['seq']}"


def by_workload(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by workload label, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(workload_label(row), []).append(row)
    return groups


#: Above this ratio of the slowest whisker to the fastest bar, a linear axis squashes the fast bars to slivers
#: (a 905 ms p90 beside 20 ms bars): the axis turns logarithmic and says so.
LOG_AXIS_RATIO = 20.0


def latency_bars(result: dict[str, Any], path: Path) -> Path | None:
    """One panel per workload, one bar per unit: p50 bar, whisker up to p90, and the table's speedup cell — with
    its flags: "unstable (a–b)" where the rounds disagree, "!" on a unit measured under contention (the notes
    under the table are printed under the chart too) — the chart to post."""
    groups = by_workload(result["results"])
    if not groups:
        return None
    baseline = result.get("settings", {}).get("baseline", "the baseline")
    columns = 1 if len(groups) == 1 else 2
    panel_rows = math.ceil(len(groups) / columns)
    units = max(len(rows) for rows in groups.values())
    notes = contention_notes(result)
    size = (8 * columns, (0.55 * units + 1.6) * panel_rows + 0.25 * len(notes))
    fig, axes = plt.subplots(panel_rows, columns, figsize=size, squeeze=False)
    for ax, (label, rows) in zip(axes.flat, groups.items()):
        chosen = sorted(rows, key=lambda r: r["latency_ms"]["p50"])
        p50 = [r["latency_ms"]["p50"] for r in chosen]
        p90 = [r["latency_ms"]["p90"] for r in chosen]
        names = [r["unit"] + (" !" if (r.get("contention") or {}).get("flagged") else "") for r in chosen]
        ax.barh(names, p50, xerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90)]], color="#4C72B0", capsize=4)
        for y, row in enumerate(chosen):
            speed = f"  {speedup_text(row)}" if row.get("speedup") else ""
            ax.text(row["latency_ms"]["p90"], y, f" {row['latency_ms']['p50']:.2f} ms{speed}", va="center", fontsize=9)
        ax.invert_yaxis()
        if max(p90) / max(min(p50), 1e-9) > LOG_AXIS_RATIO:
            ax.set_xscale("log")
            ax.set_xlim(min(p50) / 1.5, max(p90) * 8)  # room for the labels right of the longest whisker
            ax.set_xlabel("latency, ms, log scale (bar = p50, whisker = p90)")
        else:
            ax.set_xlim(0, max(p90) * 1.5)
            ax.set_xlabel("latency, ms (bar = p50, whisker = p90)")
        ax.set_title(f"{label}{_measured(rows[0])}", fontsize=10)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle(f"{result['model']} on {device_names(result)} — speedup vs {baseline}, same run", fontsize=11)
    fig.tight_layout()
    if notes:  # the table's notes, word for word: a chart must not drop what the table says
        fig.text(0.01, 0.0, "\n".join(notes), fontsize=8, va="top", ha="left", wrap=True)
    return _save(fig, path)


def _measured(row: dict[str, Any]) -> str:
    """What a generation row's latency is: its time to first token, or one decode step ('' for encoder rows)."""
    if row.get("workload") != "generation":
        return ""
    return ": time to first token" if row.get("new_tokens", 1) == 1 else ": one decode step"


def decode_rate_bars(result: dict[str, Any], path: Path) -> Path | None:
    """Generation: decode tokens/s per unit, one bar group per decode batch (the rate a chat user feels)."""
    rows = [row for row in result["results"] if row.get("decode_tokens_per_s")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["batch"], -r["decode_tokens_per_s"]))
    names = [f"{r['unit']} b{r['batch']}" + (" !" if (r.get("contention") or {}).get("flagged") else "") for r in rows]
    rates = [r["decode_tokens_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    ax.barh(names, rates, color="#55A868")
    for y, rate in enumerate(rates):
        ax.text(rate, y, f" {rate:.1f}", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(rates) * 1.25)
    ax.set_xlabel("decode tokens / s (greedy, batch x steps / decode time)")
    ax.set_title(f"{result['model']}: decode rate — {device_names(result)}", fontsize=10)
    return _save(fig, path)


def _series(result: dict[str, Any], x_key: str, fixed_key: str) -> dict[str, list[tuple[int, float, float]]]:
    """One series per (unit, value of `fixed_key`) over `x_key`, for fixed-grid rows with ≥ 2 points."""
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for row in result["results"]:
        if row["workload"] == "fixed":
            name = f"{row['unit']} {'B' if fixed_key == 'batch' else 'S'}{row[fixed_key]}"
            series[name].append((row[x_key], row["latency_ms"]["p50"], row["throughput"]["sequences_per_s"]))
    return {name: sorted(points) for name, points in series.items() if len(points) > 1}


def _line_chart(
    result: dict[str, Any], path: Path, x_key: str, fixed_key: str, y_index: int, labels: tuple[str, str, str]
) -> Path | None:
    """One line per unit and value of `fixed_key` over `x_key`; y is p50 (1) or seq/s (2)."""
    series = _series(result, x_key, fixed_key)
    if not series:
        return None
    xlabel, ylabel, title = labels
    fixed_values = sorted({int(name.rsplit(" ", 1)[1][1:]) for name in series})
    fixed_text = f"{'batch' if fixed_key == 'batch' else 'seq'} {', '.join(map(str, fixed_values))}"
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[y_index] for p in points], marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale("log", base=2)
    if y_index == 1:
        ax.set_yscale("log")
    ax.set_title(f"{result['model']}: {title} at {fixed_text} — {device_names(result)}", fontsize=10)
    ax.legend(fontsize=7, ncol=2 if len(series) > 8 else 1)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latency_vs_length(result: dict[str, Any], path: Path) -> Path | None:
    labels = ("sequence length (tokens)", "p50 latency, ms", "latency vs sequence length")
    return _line_chart(result, path, "seq", "batch", 1, labels)


def throughput_vs_batch(result: dict[str, Any], path: Path) -> Path | None:
    return _line_chart(result, path, "batch", "seq", 2, ("batch size", "sequences / s (at p50)", "throughput vs batch"))


def utilisation_timeline(result: dict[str, Any], path: Path) -> Path | None:
    """bench --monitor: one panel per unit, its CPU and GPU use over the run's time, only while it ran."""
    from siliconlab.monitor.plot import Panel, Series, draw_panels

    units = (result.get("monitor") or {}).get("units") or {}
    cores = float(result.get("machine", {}).get("cores_logical") or 1)
    panels: list[Panel] = []
    for unit, timeline in units.items():
        t, series = timeline["t"], timeline["series"]

        def scaled(key: str, factor: float = 1.0, series: dict[str, list] = series) -> list[float]:
            return [math.nan if v is None else v * factor for v in series[key]]

        lines: Series = {}
        if "procs.own_cores" in series:
            lines["bench processes, % of all cores"] = (t, scaled("procs.own_cores", 100 / cores))
        if "cpu.busy_pct" in series:
            lines["machine CPU busy %"] = (t, scaled("cpu.busy_pct"))
        if "procs.other_cores" in series:
            lines["other processes, % of all cores"] = (t, scaled("procs.other_cores", 100 / cores))
        for key in sorted(k for k in series if k.endswith(".util_pct")):
            lines[f"{key.split('.')[0]} utilisation %"] = (t, scaled(key))
        if lines:
            panels.append((unit, "%", lines))
    if not panels:
        return None
    title = f"{result['model']}: hardware use per unit while it was timed — {device_names(result)}"
    return draw_panels(panels, path, title, xlabel="seconds since the bench began (gaps: other units' turns)")


def write_charts(result: dict[str, Any], stem: Path) -> list[Path]:
    made = [
        latency_bars(result, stem.with_name(stem.name + "-latency.png")),
        latency_vs_length(result, stem.with_name(stem.name + "-latency-vs-length.png")),
        throughput_vs_batch(result, stem.with_name(stem.name + "-throughput-vs-batch.png")),
        decode_rate_bars(result, stem.with_name(stem.name + "-decode-rate.png")),
    ]
    if (result.get("monitor") or {}).get("units"):
        made.append(utilisation_timeline(result, stem.with_name(stem.name + "-utilisation.png")))
    return [path for path in made if path is not None]
