"""bench orchestration: convert (or reuse) each unit, run it in its own process, gather rows as they finish.

By default the units are timed interleaved: every unit's process is loaded, then each workload is measured
in rounds of short bursts, one unit at a time in rotating order, so a shared machine's slow and fast
phases (we see 2-thread speed flip by ~20% every few tens of seconds) fall on all units alike and their
ratios hold. `interleave=False` (and budget searches) time one unit after another.

Rows are written to the result file as soon as they arrive (atomically), so Ctrl-C or a crash keeps every
finished measurement.
"""

from __future__ import annotations

import json
import math
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
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
#: Interleaved timing: at least this many bursts per unit and workload, and a pause between bursts so the
#: previous unit's spinning thread pools (OpenMP, ORT) go quiet before the next one is timed.
ROUNDS = 6
SETTLE_S = 0.05
#: A burst that has not answered this long after its expected duration is a hung unit: killed and reported.
#: (A workload's first burst, which also prepares inputs and warms up, gets the plan's unit timeout.)
BURST_GRACE_S = 120.0


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
    interleave: bool = True

    @property
    def interleaved(self) -> bool:
        return self.interleave and len(self.units) > 1 and all(w["kind"] != "budget" for w in self.workloads)


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
            "isolation": "one process per unit"
            + ("; units timed in interleaved rounds of bursts" if plan.interleaved else "; units timed in turn"),
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
    if plan.interleaved:
        _run_interleaved(plan, result, events)
    else:
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


def _write_job(plan: BenchPlan, unit: Unit) -> Path:
    job = {
        "model": plan.source.spec or plan.source.name,
        "cache_dir": str(plan.cache_dir),
        "unit": unit.name,
        "unit_class": f"{type(unit).__module__}:{type(unit).__qualname__}",
        "threads": plan.threads,
        "timing": plan.timing.to_dict(),
        "config": plan.config,
        "workloads": plan.workloads,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
        return Path(handle.name)


def _record_row(plan: BenchPlan, unit: Unit, manifest: dict[str, Any], row: dict[str, Any], result, events) -> None:
    row = row | {
        "model": plan.source.name,
        "precision": unit.precision,
        "compute_precision": unit.compute_precision or unit.precision,
        "device": unit.device,
        "workload_label": label(plan.workloads[row["index"]]),
        "parity": manifest.get("parity"),
        "speedup": None,
    }
    result["results"].append(row)
    events.on_checkpoint(result)  # persist first: an interrupt now keeps this row
    events.on_row(row)


def _run_unit_process(plan: BenchPlan, unit: Unit, result: dict[str, Any], events: Events) -> None:
    """Convert (or reuse) in one child process, then time in a fresh one; rows stream back as JSON lines."""
    workloads = plan.workloads
    job_path = _write_job(plan, unit)
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
            state["done"] += 1
            _record_row(plan, unit, state["manifest"], message["row"], result, events)

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


def _convert_all(plan: BenchPlan, result: dict[str, Any], events: Events) -> dict[str, tuple[Unit, Path, dict]]:
    """Convert (or reuse) every unit, each in its own process; the ones that succeed, by name."""
    ready: dict[str, tuple[Unit, Path, dict]] = {}
    for unit in plan.units:
        events.on_unit(unit.name, "converting or reusing the artifact")
        job_path = _write_job(plan, unit)
        state: dict[str, Any] = {"manifest": {}, "error": None}

        def on_message(message: dict[str, Any], state=state) -> None:
            if message["type"] == "converted":
                state["manifest"] = message["manifest"] or {}
                if message["status"] not in ("converted", "cached"):
                    state["error"] = message["error"]

        code, last_error = _spawn(job_path, "convert", on_message, plan.unit_timeout_s)
        if state["error"] is None and code != 0:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            state["error"] = f"unit process (convert) {how}: {last_error}"[:400]
        if state["error"] is not None:
            job_path.unlink(missing_ok=True)
            _fail(result, events, unit.name, state["error"], skipped=len(plan.workloads))
            continue
        ready[unit.name] = (unit, job_path, state["manifest"])
    return ready


class _Server:
    """A unit's worker in 'serve' mode: loaded once, then timed burst by burst on command."""

    def __init__(self, job_path: Path):
        self.stderr_path = job_path.with_suffix(".serve.stderr")
        self._stderr = self.stderr_path.open("w")
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "siliconlab.bench.worker", str(job_path), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
            env=env,
        )
        self._pending = b""
        self.hung = False

    def _line(self, deadline: float) -> bytes | None:
        """One protocol line, read unbuffered so a deadline can be kept; None at EOF or when it passes."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.hung = True
                    self.process.kill()
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def receive(self, expect: str, timeout_s: float) -> dict[str, Any] | None:
        """The next message of type `expect`; None when the process ended (or hung) first."""
        deadline = time.monotonic() + timeout_s
        while (line := self._line(deadline)) is not None:
            message = json.loads(line)
            if message["type"] == expect:
                return message
        return None

    def request(self, command: dict[str, Any], expect: str, timeout_s: float) -> dict[str, Any] | None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(command) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self.receive(expect, timeout_s)

    def death(self) -> str:
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._stderr.flush()
        tail = [line for line in self.stderr_path.read_text().strip().splitlines() if line.strip()]
        how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
        if self.hung:
            how = "did not answer in time and was killed"
        return f"unit process (serve) {how}: {tail[-1] if tail else 'no output'}"[:400]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request({"cmd": "quit"}, "never", 30.0)
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, ValueError):
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        self.stderr_path.unlink(missing_ok=True)


def _run_interleaved(plan: BenchPlan, result: dict[str, Any], events: Events) -> None:
    ready = _convert_all(plan, result, events)
    servers: dict[str, _Server] = {}
    timing = plan.timing
    try:
        for name, (_unit, job_path, _) in ready.items():
            events.on_unit(name, "loading")
            server = _Server(job_path)
            servers[name] = server
            if server.receive("loaded", plan.unit_timeout_s) is None:
                _fail(result, events, name, server.death(), skipped=len(plan.workloads))
                server.close()
                del servers[name]
        for index, spec in enumerate(plan.workloads):
            live = dict(servers)
            totals = {name: [0, 0.0] for name in live}
            burst = {"cmd": "burst", "index": index, "seconds": timing.min_seconds / ROUNDS,
                     "min_iters": math.ceil(timing.min_iters / ROUNDS)}  # fmt: skip
            events.on_unit(", ".join(live) or "-", f"timing {label(spec)} in interleaved rounds")
            started, rounds = time.perf_counter(), 0
            per_call: dict[str, float] = {}  # slowest mean call time seen in this workload's bursts, per unit
            while live:
                names = list(live)
                for name in names[rounds % len(names) :] + names[: rounds % len(names)]:
                    time.sleep(SETTLE_S)
                    expected = max(timing.max_seconds, 10 * burst["min_iters"] * per_call.get(name, 0.0))
                    timeout = BURST_GRACE_S + expected if name in per_call else plan.unit_timeout_s
                    reply = live[name].request(burst, "burst", timeout)
                    if reply is None:
                        _fail(result, events, name, live.pop(name).death(), skipped=len(plan.workloads) - index)
                        servers.pop(name).close()
                        continue
                    totals[name][0] += reply["count"]
                    totals[name][1] += reply["seconds"]
                    per_call[name] = max(per_call.get(name, 0.0), reply["seconds"] / max(reply["count"], 1))
                rounds += 1
                enough = all(totals[n][0] >= timing.min_iters and totals[n][1] >= timing.min_seconds for n in live)
                capped = time.perf_counter() - started >= timing.max_seconds * max(len(live), 1) and rounds >= 3
                if (rounds >= ROUNDS and enough) or capped:
                    break
            for name, server in list(live.items()):
                reply = server.request({"cmd": "finish", "index": index}, "row", BURST_GRACE_S)
                if reply is None:
                    _fail(result, events, name, server.death(), skipped=len(plan.workloads) - index)
                    servers.pop(name).close()
                    continue
                unit, _, manifest = ready[name]
                _record_row(plan, unit, manifest, reply["row"], result, events)
    finally:
        for server in servers.values():
            server.close()
        for _, job_path, _ in ready.values():
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
        mine, theirs = (row.get("rounds") or {}).get("p50_ms"), ((ref or {}).get("rounds") or {}).get("p50_ms")
        if ratio is not None and mine and theirs and len(mine) == len(theirs):
            paired = [b / u for b, u in zip(theirs, mine)]  # round by round: both saw the same machine phase
            row["speedup_rounds"] = {"min": min(paired), "median": statistics.median(paired), "max": max(paired)}


def add_floor_fractions(rows: list[dict[str, Any]], floors: dict[str, Any]) -> None:
    for row in rows:
        precision = row.get("compute_precision") or row.get("precision", "fp32")
        floor = floors.get(floor_key(row.get("device", "cpu"), precision), {})
        rate = floor.get("gflops")
        row["floor_gflops"] = rate
        row["pct_of_floor"] = 100.0 * row["gflops_per_s"] / rate if rate and row.get("gflops_per_s") else None
