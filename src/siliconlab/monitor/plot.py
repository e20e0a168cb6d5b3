"""Timelines as PNG (matplotlib): a recording's readings over time, one panel per kind of quantity.

`panels_for(data)` picks what a recording holds (CPU use, clocks, memory, the watched process, each GPU's
utilisation / power / temperature / SM clock, macOS power) and `draw_panels` draws any such list; the bench's
per-unit utilisation chart uses the same drawing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

Series = dict[str, tuple[Sequence[float], Sequence[float]]]  # label -> (t, values)
Panel = tuple[str, str, Series]  # title, y label, series


def _has(values: Sequence[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def _pick(data: dict[str, list[float]], keys: Sequence[tuple[str, str]]) -> Series:
    t = data["t_s"]
    return {label: (t, data[key]) for key, label in keys if key in data and _has(data[key])}


def _matching(data: dict[str, list[float]], pattern: str, label: str) -> list[tuple[str, str]]:
    regex = re.compile(pattern)
    found = sorted((key for key in data if regex.fullmatch(key)), key=lambda k: [int(n) for n in re.findall(r"\d+", k)])
    return [(key, label.format(*match.groups())) for key in found if (match := regex.fullmatch(key))]


def panels_for(data: dict[str, list[float]]) -> list[Panel]:
    """The panels a recording has data for, in a fixed order."""
    panels: list[Panel] = [
        ("CPU use", "% (machine or core)",
         _pick(data, [("cpu.busy_pct", "machine busy"), ("cpu.steal_pct", "steal"), ("procs.other_pct", "other procs")]
               + _matching(data, r"cores\.cpu(\d+)_busy_pct", "cpu{}"))),
        ("CPU clock", "MHz", _pick(data, [("clock.mean_mhz", "mean (psutil)"), ("clock.min_mhz", "min (psutil)"),
                                          ("cpufreq.mean_mhz", "cpufreq mean")])),
        ("Memory", "MiB", _pick(data, [("memory.used_mb", "RAM used"), ("memory.swap_used_mb", "swap used"),
                                       ("proc.rss_mb", "watched RSS")])),
        ("Watched process", "% of one core", _pick(data, [("proc.cpu_pct", "CPU")])),
        ("GPU utilisation", "%", _pick(data, _matching(data, r"gpu(\d+)\.util_pct", "gpu{} SM busy")
                                       + _matching(data, r"gpu(\d+)\.mem_util_pct", "gpu{} memory busy"))),
        ("GPU power", "W", _pick(data, _matching(data, r"gpu(\d+)\.power_w", "gpu{}"))),
        ("GPU SM clock", "MHz", _pick(data, _matching(data, r"gpu(\d+)\.sm_mhz", "gpu{}"))),
        ("GPU temperature", "°C", _pick(data, _matching(data, r"gpu(\d+)\.temp_c", "gpu{}"))),
        ("Power (powermetrics)", "W", _pick(data, [("powermetrics.power_w", "combined"), ("powermetrics.cpu_w", "CPU"),
                                                   ("powermetrics.gpu_w", "GPU"), ("powermetrics.ane_w", "ANE")])),
    ]  # fmt: skip
    return [panel for panel in panels if panel[2]]


def draw_panels(panels: Sequence[Panel], path: Path, title: str, xlabel: str = "seconds") -> Path:
    """One stacked panel per entry, shared x axis; at most 8 lines get a legend entry each (cores beyond are grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("nothing to draw: no reading has a value")
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 2.3 * len(panels) + 0.8), sharex=True, squeeze=False)
    for ax, (name, ylabel, series) in zip(axes[:, 0], panels):
        for index, (label, (t, values)) in enumerate(series.items()):
            many = index >= 8
            ax.plot(t, values, linewidth=0.8 if many else 1.3, color="0.7" if many else None,
                    label=None if many else label, marker="." if len(t) < 40 else None)  # fmt: skip
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the data stays visible
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_recording(data: dict[str, list[float]], path: Path, title: str = "recording") -> Path:
    """A recording's panels to `path` (PNG)."""
    seconds = data["t_s"][-1] - data["t_s"][0] if data["t_s"] else 0.0
    heading = f"siliconlab monitor: {title} — {len(data['t_s'])} polls, {seconds:.1f} s"
    return draw_panels(panels_for(data), path, heading)
