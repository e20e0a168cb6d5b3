"""`bench --monitor`: what the hardware did while each unit ran, from the contention watch's one Sampler.

With --monitor the contention watch's Sampler also polls the hardware sources (per-core use, clocks, memory,
RAPL, NVML GPUs, powermetrics) every MONITOR_INTERVAL_S, and the runner notes the span of every burst it
sends to a unit. Each row then gets `monitor`: the readings' mean/min/max over that unit's own bursts of
that workload (in interleaved mode other units' bursts are left out), energy per counter interpolated at the
burst edges, and `flags`. A row is flagged — and its `contention` marked, so the report's "!" and the
never-"best" rule apply as for the workload-wide contention check — when the CPU clock dropped more than
CLOCK_DROP below the run's highest reading, or processes outside the bench used more than
OTHER_CORES_LIMIT cores while this unit ran. The result's `monitor.units` holds each unit's timeline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from siliconlab.bench.contention import OTHER_CORES_LIMIT
from siliconlab.monitor.gpu import SLOWDOWN_MASK, throttle_names
from siliconlab.monitor.sampler import Sample

MONITOR_INTERVAL_S = 0.25
#: A row is flagged when the lowest CPU clock seen during it is this fraction below the run's highest.
CLOCK_DROP = 0.10
#: Readings kept in the per-unit timelines (per-core figures stay in row summaries' absence: too many series).
TIMELINE = re.compile(r"cpu\.(busy|steal)_pct|procs\.(own|other)_cores|clock\.(mean|min)_mhz|cpufreq\.(mean|min)_mhz|"
                      r"memory\.(used|swap_used)_mb|gpu\d+\.(util_pct|mem_util_pct|used_mb|power_w|temp_c|sm_mhz)|"
                      r"powermetrics\.(power|cpu|gpu|ane)_w")  # fmt: skip
_PER_CORE = re.compile(r"(cores|clock)\.cpu\d+_")
Span = tuple[float, float]


def in_spans(samples: Sequence[Sample], spans: Sequence[Span]) -> list[Sample]:
    return [s for s in samples if any(t0 <= s.t <= t1 for t0, t1 in spans)]


def counter_at(samples: Sequence[Sample], key: str, t: float) -> float | None:
    """A cumulative counter's value at time t, linear between the polls around it (None outside them)."""
    points = [(s.t, s.values[key]) for s in samples if key in s.values]
    for (ta, va), (tb, vb) in zip(points, points[1:]):
        if ta <= t <= tb:
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return None


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": round(sum(values) / len(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def clock_reference(samples: Sequence[Sample]) -> float | None:
    """The highest CPU clock read during the run (psutil or cpufreq): what a drop is measured against."""
    values = [s.values[k] for s in samples for k in ("clock.max_mhz", "cpufreq.max_mhz") if k in s.values]
    return max(values) if values else None


def row_monitor(samples: Sequence[Sample], spans: Sequence[Span], reference_mhz: float | None) -> dict[str, Any]:
    """Mean/min/max of every machine-wide reading over the spans, energy per counter, and the flags."""
    inside = in_spans(samples, spans)
    keys = sorted({k for s in inside for k in s.values if not _PER_CORE.match(k) and not k.endswith("_j")})
    readings = {k: _stats([s.values[k] for s in inside if k in s.values]) for k in keys if k != "loadavg.cores"}
    energy: dict[str, float] = {}
    counters = sorted({k for s in samples for k in s.values if k.endswith("energy_j")})
    for key in counters:
        edges = [(counter_at(samples, key, t0), counter_at(samples, key, t1)) for t0, t1 in spans]
        deltas = [b - a for a, b in edges if a is not None and b is not None]
        if edges and len(deltas) == len(edges):
            energy[key] = round(sum(deltas), 3)
    throttles = sorted({name for s in inside for k, v in s.values.items() if k.endswith(".throttle")
                        for name in throttle_names(int(v) & SLOWDOWN_MASK)})  # fmt: skip
    summary: dict[str, Any] = {"samples": len(inside), "seconds": round(sum(t1 - t0 for t0, t1 in spans), 3),
                               "readings": readings, "energy_j": energy, "gpu_slowdowns": throttles}  # fmt: skip
    summary["flags"] = flags(readings, reference_mhz)
    return summary


def flags(readings: dict[str, dict[str, float]], reference_mhz: float | None) -> list[str]:
    """Why this row's figure may not be the unit's own: a CPU clock drop, or other processes on the CPU."""
    found = []
    lows = [readings[k]["min"] for k in ("clock.min_mhz", "cpufreq.min_mhz") if k in readings]
    if reference_mhz and lows and min(lows) < (1 - CLOCK_DROP) * reference_mhz:
        drop = 100 * (1 - min(lows) / reference_mhz)
        found.append(f"CPU clock dropped to {min(lows):.0f} MHz ({drop:.0f}% below the run's {reference_mhz:.0f} MHz)")
    other = readings.get("procs.other_cores", {}).get("mean")
    if other is not None and other > OTHER_CORES_LIMIT:
        found.append(f"other processes used {other:.2f} cores while this unit ran")
    return found


def unit_timeline(samples: Sequence[Sample], spans: Sequence[Span], start: float) -> dict[str, Any]:
    """{t: seconds since the run began, series: {reading: values}}; a NaN after each burst breaks the line."""
    inside = in_spans(samples, spans)
    keys = sorted({k for s in inside for k in s.values if TIMELINE.fullmatch(k)})
    t: list[float] = []
    series: dict[str, list[float | None]] = {k: [] for k in keys}
    for t0, t1 in spans:
        for sample in (s for s in inside if t0 <= s.t <= t1):
            t.append(round(sample.t - start, 3))
            for key in keys:
                value = sample.values.get(key)
                series[key].append(None if value is None else round(value, 3))
        t.append(round(t1 - start, 3))
        for key in keys:
            series[key].append(None)  # JSON null: the gap until this unit's next burst
    return {"t": t, "series": series}


def apply_flags(row: dict[str, Any]) -> None:
    """Fold the row's monitor flags into its contention entry (a copy: rows of a workload share the window)."""
    found = (row.get("monitor") or {}).get("flags") or []
    if not found:
        return
    contention = dict(row.get("contention") or {"reasons": []})
    contention["row_reasons"] = list(found)
    contention["flagged"] = True
    row["contention"] = contention


def monitor_notes(result: dict[str, Any]) -> list[str]:
    """One line per row flagged by the hardware timeline."""
    return [f"! {row['unit']} {row.get('workload_label', '')}: {'; '.join(row['contention']['row_reasons'])}"
            for row in result["results"] if (row.get("contention") or {}).get("row_reasons")]  # fmt: skip


def _cell(readings: dict[str, Any], key: str, spec: str = ".0f", field: str = "mean") -> str:
    entry = readings.get(key)
    return "" if entry is None or entry.get(field) is None or math.isnan(entry[field]) else f"{entry[field]:{spec}}"


def markdown_lines(result: dict[str, Any]) -> list[str]:
    """The report's 'Hardware during each row' table (bench --monitor only)."""
    section = result.get("monitor") or {}
    rows = [r for r in result["results"] if r.get("monitor")]
    if not section or not rows:
        return []
    lines = ["", "## Hardware during each row (bench --monitor)", "",
             f"Polled every {section.get('interval_s', MONITOR_INTERVAL_S):g} s; each row covers only its unit's own "
             "bursts. Unavailable here: " + ("; ".join(f"{k} ({v})" for k, v in section.get("unavailable", {}).items())
                                             or "none"), "",
             "| unit | workload | polls | CPU busy % mean/max | bench cores | other cores | CPU MHz min | GPU util % "
             "mean/max | GPU W mean | GPU SM MHz | energy J | flags |", "|" + "---|" * 12]  # fmt: skip
    for row in rows:
        mon = row["monitor"]
        r = mon["readings"]
        gpu = next((k.split(".")[0] for k in r if k.endswith(".util_pct") and k.startswith("gpu")), None)
        util = f"{_cell(r, f'{gpu}.util_pct')}/{_cell(r, f'{gpu}.util_pct', field='max')}" if gpu else ""
        mhz = _cell(r, "cpufreq.min_mhz", field="min") or _cell(r, "clock.min_mhz", field="min")
        energy = ", ".join(f"{k.split('.')[0]} {v:.1f}" for k, v in mon["energy_j"].items())
        lines.append(
            f"| {row['unit']} | {row.get('workload_label', '')} | {mon['samples']} | {_cell(r, 'cpu.busy_pct')}/"
            f"{_cell(r, 'cpu.busy_pct', field='max')} | {_cell(r, 'procs.own_cores', '.2f')} | "
            f"{_cell(r, 'procs.other_cores', '.2f')} | {mhz} | {util} | {_cell(r, f'{gpu}.power_w') if gpu else ''} | "
            f"{_cell(r, f'{gpu}.sm_mhz') if gpu else ''} | {energy} | "
            f"{'; '.join(mon['flags'] + [f'GPU {s}' for s in mon['gpu_slowdowns']]) or 'none'} |"
        )
    return lines
