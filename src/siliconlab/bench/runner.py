"""bench orchestration: convert (or reuse) each unit, run it in its own process, gather rows as they finish.

Rows are written to the result file as soon as they arrive (atomically), so Ctrl-C or a crash keeps every
finished measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from siliconlab import __version__
from siliconlab.bench.floor import floor_key, measure_floors
from siliconlab.bench.machine import machine_info
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import label
from siliconlab.models.base import ModelSource
from siliconlab.units.base import Unit

RESULT_SCHEMA = "siliconlab.bench/2"


@dataclass
class BenchPlan:
    source: ModelSource
    units: list[Unit]
    workloads: list[dict[str, Any]]
    cache_dir: Path
    threads: int
    timing: TimingConfig
    baseline: str
    config: dict[str, int]
    measure_floor: bool = True
    quick: bool = False
    unit_timeout_s: float = 3600.0


class Events:
    """Callbacks for progress display; all optional."""

    def __init__(
        self,
        on_unit: Callable[[str, str], None] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        on_failure: Callable[[dict[str, str]], None] | None = None,
        on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.on_unit = on_unit or (lambda unit, what: None)
        self.on_row = on_row or (lambda row: None)
        self.on_failure = on_failure or (lambda failure: None)
        self.on_checkpoint = on_checkpoint or (lambda result: None)


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
            "threads": plan.threads,
            "timing": plan.timing.to_dict(),
            "baseline": plan.baseline,
            "units": [unit.name for unit in plan.units],
            "workloads": [{k: v for k, v in w.items() if k != "texts"} | _text_facts(w) for w in plan.workloads],
            "isolation": "one process per unit",
        },
        "floors": {},
        "results": [],
        "failures": [],
        "complete": False,
    }


def _text_facts(spec: dict[str, Any]) -> dict[str, Any]:
    return {"texts": len(spec["texts"])} if "texts" in spec else {}


def run_plan(plan: BenchPlan, events: Events | None = None) -> dict[str, Any]:
    events = events or Events()
    result = new_result(plan)
    if plan.measure_floor:
        events.on_unit("machine floor", "measuring GEMM rates")
        result["floors"] = measure_floors({u.device for u in plan.units}, plan.threads, quick=plan.quick)
    for unit in plan.units:
        events.on_unit(unit.name, "converting or reusing the artifact")
        _run_unit_process(plan, unit, result, events)
    finish(result, plan.baseline)
    result["complete"] = True
    return result


def _fail(result: dict[str, Any], events: Events, unit: str, error: str, skipped: int = 0) -> None:
    failure = {"unit": unit, "error": error}
    result["failures"].append(failure)
    events.on_failure(failure | {"skipped": skipped})
    events.on_checkpoint(result)


def _run_unit_process(plan: BenchPlan, unit: Unit, result: dict[str, Any], events: Events) -> None:
    """Convert (or reuse) in one child process, then time in a fresh one; rows stream back as JSON lines."""
    workloads = plan.workloads
    job = {
        "model": plan.source.spec or plan.source.name,
        "cache_dir": str(plan.cache_dir),
        "unit": unit.name,
        "unit_class": f"{type(unit).__module__}:{type(unit).__qualname__}",
        "threads": plan.threads,
        "timing": plan.timing.to_dict(),
        "config": plan.config,
        "workloads": workloads,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
        job_path = Path(handle.name)
    state: dict[str, Any] = {"manifest": {}, "failed": False, "done": 0}

    def on_message(message: dict[str, Any]) -> None:
        if message["type"] == "converted":
            state["manifest"] = message["manifest"] or {}
            if message["status"] not in ("converted", "cached"):
                state["failed"] = True
                _fail(result, events, unit.name, message["error"], skipped=len(workloads))
        elif message["type"] == "loaded":
            events.on_unit(unit.name, "timing")
        elif message["type"] == "row":
            row = message["row"] | {
                "model": plan.source.name,
                "precision": unit.precision,
                "compute_precision": unit.compute_precision or unit.precision,
                "device": unit.device,
                "workload_label": label(workloads[message["row"]["index"]]),
                "parity": state["manifest"].get("parity"),
                "speedup": None,
            }
            result["results"].append(row)
            state["done"] += 1
            events.on_checkpoint(result)  # persist first: an interrupt now keeps this row
            events.on_row(row)

    try:
        for mode in ("convert", "time"):
            code, last_error = _spawn(job_path, mode, on_message, plan.unit_timeout_s)
            if state["failed"]:
                return
            if code != 0:
                how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
                error = f"unit process ({mode}) {how}: {last_error}"[:400]
                _fail(result, events, unit.name, error, skipped=len(workloads) - state["done"])
                return
    finally:
        job_path.unlink(missing_ok=True)


def _spawn(job_path: Path, mode: str, on_message: Callable[[dict[str, Any]], None], timeout_s: float):
    """Run the worker; returns (exit code, last stderr line). The child sees the parent's import path, so
    units defined outside the package run isolated too."""
    stderr_path = job_path.with_suffix(f".{mode}.stderr")
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "siliconlab.bench.worker", str(job_path), mode],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
            )
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    on_message(json.loads(line))
                code = process.wait(timeout=timeout_s)
            except BaseException:
                process.kill()
                process.wait()
                raise
        tail = [line for line in stderr_path.read_text().strip().splitlines() if line.strip()]
        return code, (tail[-1] if tail else "no output")
    finally:
        stderr_path.unlink(missing_ok=True)


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


def add_floor_fractions(rows: list[dict[str, Any]], floors: dict[str, Any]) -> None:
    for row in rows:
        precision = row.get("compute_precision") or row.get("precision", "fp32")
        floor = floors.get(floor_key(row.get("device", "cpu"), precision), {})
        rate = floor.get("gflops")
        row["floor_gflops"] = rate
        row["pct_of_floor"] = 100.0 * row["gflops_per_s"] / rate if rate and row.get("gflops_per_s") else None
