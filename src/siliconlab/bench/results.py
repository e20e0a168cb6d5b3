"""The result document of one bench run (schema siliconlab.bench/5): its header, its rows, and the figures
derived from rows of several units (speedup against the baseline, fraction of the machine's floor)."""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from typing import Any

from siliconlab.bench.floor import floor_key
from siliconlab.bench.machine import machine_info
from siliconlab.bench.plan import BenchPlan
from siliconlab.units.base import Unit
from siliconlab.version import __version__

RESULT_SCHEMA = "siliconlab.bench/5"  # 5: one loop for every model kind: settings.kind; generation rows gain
# latency_ms (TTFT or decode step), iterations, runs, cold_ms, rounds, speedup, contention, load_s, gpu_memory_mb
# 4: executed_precision, floor_precision, per-probe floors, machine cpu_features
# 3: machine_load, row contention, stream_passes, baseline threading


def new_result(plan: BenchPlan) -> dict[str, Any]:
    return {
        "schema": RESULT_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "siliconlab_version": __version__,
        "model": plan.source.name,
        "model_source": plan.source.source,
        "architecture_only": plan.source.architecture_only,
        "machine": machine_info(),
        "settings": {
            "kind": plan.kind,
            "threads": plan.threads,
            "timing": plan.timing.to_dict(),
            "baseline": plan.baseline,
            "omp_wait_policy": plan.omp_wait_policy,
            "units": [unit.name for unit in plan.units],
            "workloads": [w.settings() for w in plan.workloads],
            "isolation": "one process per unit"
            + ("; units timed in interleaved rounds of bursts" if plan.interleaved else "; units timed in turn"),
        }
        | ({} if plan.kind == "encoder" else {"decoding": "greedy"}),
        "floors": {},
        "results": [],
        "failures": [],
        "complete": False,
    }


def unit_row(plan: BenchPlan, unit: Unit, manifest: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A worker's row with what the parent knows: the model, the unit's precision and device, its parity."""
    return row | {
        "model": plan.source.name,
        "precision": unit.precision,
        "compute_precision": unit.compute_precision or unit.precision,
        "device": unit.device,
        "workload_label": plan.workloads[row["index"]].label,
        "parity": manifest.get("parity"),
        "speedup": None,
    }


def finish(result: dict[str, Any], baseline: str) -> None:
    add_speedups(result["results"], baseline)
    add_floor_fractions(result["results"], result.get("floors", {}))


def _shape_key(row: dict[str, Any]) -> tuple:
    """Rows of one workload spec match across units; a text row's seq is a mean that differs per unit."""
    if row.get("workload_label"):
        return (row["workload"], row["workload_label"])
    return (row["workload"], row["batch"], row["seq"], row.get("budget_ms"))


def add_speedups(rows: list[dict[str, Any]], baseline: str) -> None:
    """speedup = baseline p50 / unit p50 on the same workload, in the same run; None when no baseline row.

    For the budget workload the ratio is of throughput (what that workload maximises).
    """

    def key(r: dict[str, Any]) -> tuple:
        return ("budget", r["seq"]) if r["workload"] == "budget" else _shape_key(r)

    base = {key(r): r for r in rows if r["unit"] == baseline}
    for row in rows:
        ref = base.get(key(row))
        if row["workload"] == "budget":
            ratio = row["throughput"]["sequences_per_s"] / ref["throughput"]["sequences_per_s"] if ref else None
        else:
            ratio = ref["latency_ms"]["p50"] / row["latency_ms"]["p50"] if ref else None
        row["speedup"] = ratio
        mine, theirs = (row.get("rounds") or {}).get("p50_ms"), ((ref or {}).get("rounds") or {}).get("p50_ms")
        if ratio is not None and mine and theirs and len(mine) == len(theirs):
            paired = [b / u for b, u in zip(theirs, mine)]  # round by round: both saw the same machine phase
            row["speedup_rounds"] = {"min": min(paired), "median": statistics.median(paired), "max": max(paired)}


#: Fastest arithmetic first: a unit that runs a mix is held to the floor of its fastest part (never flattered).
_FLOOR_ORDER = ("fp8", "int8", "int4", "bf16", "fp16", "fp32")


def floor_precision(row: dict[str, Any]) -> str:
    """The precision a row is held to: what the engine executed (read back, e.g. 'int8 30/36, bf16 6/36'),
    else what the unit declares it computes in."""
    executed = str(row.get("executed_precision") or "")
    seen = {part.strip().split(" ")[0] for part in executed.split(",") if part.strip()}
    for precision in _FLOOR_ORDER:
        if precision in seen:
            return precision
    return row.get("compute_precision") or row.get("precision", "fp32")


def add_floor_fractions(rows: list[dict[str, Any]], floors: dict[str, Any]) -> None:
    for row in rows:
        precision = floor_precision(row)
        row["floor_precision"] = precision
        floor = floors.get(floor_key(row.get("device", "cpu"), precision), {})
        rate = floor.get("gflops")
        row["floor_gflops"] = rate
        row["pct_of_floor"] = 100.0 * row["gflops_per_s"] / rate if rate and row.get("gflops_per_s") else None
