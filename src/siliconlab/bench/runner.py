"""bench orchestration: convert (or reuse) each unit once, time it in its own process, gather rows as they finish.

There is one timing loop. Units are timed in groups: by default one group of all units, timed interleaved —
every unit's process is loaded, then each workload is measured in rounds of short bursts, one unit at a time
in rotating order, so a shared machine's slow and fast phases (we see 2-thread speed flip by ~20% every few
tens of seconds) fall on all units alike and their ratios hold. `interleave=False` (and budget searches) make
one group per unit, timed one after another: the same loop, with one burst of the full timing per workload.

Rows are written to the result file as soon as they arrive (atomically), so Ctrl-C or a crash keeps every
finished measurement. Every model kind goes through this loop: what a burst times (an encoder's calls, a
decoder's greedy runs) is the worker's business (bench/worker.py, bench/generate.py, bench/kinds.py).
"""

from __future__ import annotations

import json
import math
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siliconlab.bench.contention import ContentionWatch
from siliconlab.bench.floor import measure_floors
from siliconlab.bench.plan import BenchPlan
from siliconlab.bench.process import WorkerProcess
from siliconlab.bench.results import finish, new_result, unit_row
from siliconlab.bench.timing import TimingConfig
from siliconlab.units.base import Unit

#: Interleaved timing: at least this many bursts per unit and workload, and a pause between bursts so the
#: previous unit's spinning thread pools (OpenMP, ORT) go quiet before the next one is timed.
ROUNDS = 6
SETTLE_S = 0.05
#: A burst that has not answered this long after its expected duration is a hung unit: killed and reported.
#: (A workload's first burst, which also prepares inputs and warms up, gets the plan's unit_timeout_s;
#: converting and loading get its start_timeout_s.)
BURST_GRACE_S = 120.0


class Events:
    """Callbacks for progress display; all optional."""

    def __init__(
        self,
        on_unit: Callable[[str, str], None] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.on_unit = on_unit or (lambda unit, what: None)
        self.on_row = on_row or (lambda row: None)
        self.on_failure = on_failure or (lambda failure: None)
        self.on_checkpoint = on_checkpoint or (lambda result: None)


@dataclass
class _Timed:
    """A unit whose timing process is loaded, and what its bursts of the current workload added up to."""

    unit: Unit
    manifest: dict[str, Any]
    worker: WorkerProcess
    alive: bool = True
    done: bool = False  # the workload said it needs no more bursts (a budget search times itself whole)
    count: int = 0
    seconds: float = 0.0
    per_call_s: float | None = None  # slowest mean call time seen in this workload's bursts
    longest_call_s: float = 0.0  # a generation burst is whole runs: the longest one seen

    def start_workload(self) -> None:
        self.done, self.count, self.seconds, self.per_call_s, self.longest_call_s = False, 0, 0.0, None, 0.0

    def add(self, reply: dict[str, Any]) -> None:
        self.count += reply["count"]
        self.seconds += reply["seconds"]
        self.done = bool(reply.get("done"))
        per_call = reply["seconds"] / max(reply["count"], 1)
        self.per_call_s = max(self.per_call_s or 0.0, per_call)
        self.longest_call_s = max(self.longest_call_s, reply.get("longest_call_s") or 0.0)


def burst_command(index: int, timing: TimingConfig, rounds: int) -> dict[str, Any]:
    """One burst of workload `index`: the full timing when a unit is timed alone, a 1/rounds slice otherwise."""
    if rounds == 1:
        seconds, min_iters, max_seconds = timing.min_seconds, timing.min_iters, timing.max_seconds
    else:
        seconds, min_iters = timing.min_seconds / rounds, math.ceil(timing.min_iters / rounds)
        max_seconds = seconds
    return {"cmd": "burst", "index": index, "seconds": seconds, "min_iters": min_iters, "max_seconds": max_seconds}


@dataclass
class _Session:
    plan: BenchPlan
    events: Events
    result: dict[str, Any] = field(init=False)
    jobs: list[Path] = field(default_factory=list)
    watch: ContentionWatch | None = None
    #: (unit, workload index) -> the perf_counter spans of its bursts, for bench --monitor's timelines.
    spans: dict[tuple[str, int], list[tuple[float, float]]] = field(default_factory=dict)
    row_keys: dict[int, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.result = new_result(self.plan)

    def fail(self, unit: str, error: str, skipped: int) -> None:
        failure = {"unit": unit, "error": error}
        self.result["failures"].append(failure)
        self.events.on_failure(failure | {"skipped": skipped})
        self.events.on_checkpoint(self.result)

    def drop(self, timed: _Timed, index: int) -> None:
        """A unit's process died or hung during workload `index`: report it; it times nothing more."""
        timed.alive = False
        self.fail(timed.unit.name, timed.worker.death(), skipped=len(self.plan.workloads) - index)
        timed.worker.close()

    def write_job(self, unit: Unit, artifact_dir: str | None = None) -> Path:
        plan = self.plan
        job = {
            "kind": plan.kind,
            "model": plan.source.spec or plan.source.name,
            "has_tokenizer": not plan.source.architecture_only,
            "cache_dir": str(plan.cache_dir),
            "unit": unit.name,
            "unit_class": f"{type(unit).__module__}:{type(unit).__qualname__}",
            "threads": plan.threads,
            "timing": plan.timing.to_dict(),
            "config": plan.config,
            "workloads": [w.to_json() for w in plan.workloads],
            "artifact_dir": artifact_dir,
        }
        if not plan.source.spec:  # a source no name resolves to (built in code): the worker unpickles it
            with tempfile.NamedTemporaryFile("wb", suffix=".source.pickle", delete=False) as pickled:
                pickle.dump(plan.source, pickled)
            self.jobs.append(Path(pickled.name))
            job["source_pickle"] = pickled.name
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(job, handle)
        self.jobs.append(Path(handle.name))
        return Path(handle.name)

    def convert(self, unit: Unit) -> tuple[str, dict[str, Any]] | None:
        """Convert or reuse the unit's artifact, in a process of its own: (artifact folder, manifest), or None."""
        self.events.on_unit(unit.name, "converting or reusing the artifact")
        worker = WorkerProcess(self.write_job(unit), "convert")
        try:
            message = worker.receive("converted", self.plan.start_timeout_s)
            if message is None or worker.exit_code() != 0:
                error = worker.death()
            elif message["artifact_dir"] is None:
                error = message["error"]
            else:
                return message["artifact_dir"], message["manifest"] or {}
        finally:
            worker.close()
        self.fail(unit.name, error, skipped=len(self.plan.workloads))
        return None

    def load(self, unit: Unit, artifact_dir: str, manifest: dict[str, Any]) -> _Timed | None:
        """Start the unit's timing process on its artifact and wait until it has loaded."""
        self.events.on_unit(unit.name, "loading")
        worker = WorkerProcess(self.write_job(unit, artifact_dir), "serve", env=self.plan.process_env)
        if worker.receive("loaded", self.plan.start_timeout_s) is None:
            self.fail(unit.name, worker.death(), skipped=len(self.plan.workloads))
            worker.close()
            return None
        return _Timed(unit, manifest, worker)

    def time_group(self, units: list[Unit]) -> None:
        """Convert every unit of the group, load them all, then time each workload on the ones still alive."""
        converted = [(unit, found) for unit in units if (found := self.convert(unit)) is not None]
        group = [timed for unit, found in converted if (timed := self.load(unit, *found)) is not None]
        try:
            for index in range(len(self.plan.workloads)):
                if not any(timed.alive for timed in group):
                    break
                self.time_workload(index, [timed for timed in group if timed.alive])
        finally:
            for timed in group:
                timed.worker.close()

    def deadline(self, timed: _Timed, burst: dict[str, Any]) -> float:
        if timed.per_call_s is None:  # the workload's first burst also prepares inputs and warms up
            return self.plan.unit_timeout_s
        expected = max(10 * burst["min_iters"] * timed.per_call_s, 10 * timed.longest_call_s)
        return BURST_GRACE_S + max(self.plan.timing.max_seconds, expected)

    def time_workload(self, index: int, group: list[_Timed]) -> None:
        """Rounds of bursts in rotating order until every unit has enough (or time is up), then one row each."""
        plan, timing = self.plan, self.plan.timing
        wanted = ROUNDS if plan.interleaved else 1
        burst = burst_command(index, timing, wanted)
        for timed in group:
            timed.start_workload()
        how = " in interleaved rounds" if plan.interleaved else ""
        self.events.on_unit(", ".join(t.unit.name for t in group), f"timing {plan.workloads[index].label}{how}")
        started, rounds = time.perf_counter(), 0
        while active := [t for t in group if t.alive and not t.done]:
            shift = rounds % len(active)
            for timed in active[shift:] + active[:shift]:
                if plan.interleaved:
                    time.sleep(SETTLE_S)
                begin = time.perf_counter()
                reply = timed.worker.request(burst, "burst", self.deadline(timed, burst))
                self.spans.setdefault((timed.unit.name, index), []).append((begin, time.perf_counter()))
                if reply is None:
                    self.drop(timed, index)
                    continue
                timed.add(reply)
            rounds += 1
            active = [t for t in group if t.alive and not t.done]
            enough = all(t.count >= timing.min_iters and t.seconds >= timing.min_seconds for t in active)
            elapsed = time.perf_counter() - started
            capped = elapsed >= timing.max_seconds * max(len(active), 1) and rounds >= min(3, wanted)
            if (rounds >= wanted and enough) or capped:
                break
        load_window = self.watch.window(started, time.perf_counter()) if self.watch is not None else None
        for timed in [t for t in group if t.alive]:
            reply = timed.worker.request({"cmd": "finish", "index": index, "rounds": plan.interleaved}, "row",
                                         BURST_GRACE_S)  # fmt: skip
            if reply is None:
                self.drop(timed, index)
                continue
            row = unit_row(plan, timed.unit, timed.manifest, reply["row"])
            self.row_keys[id(row)] = (timed.unit.name, index)  # which bursts were this row's (bench --monitor)
            if self.watch is not None:
                row["contention"] = load_window
            self.result["results"].append(row)
            self.events.on_checkpoint(self.result)  # persist first: an interrupt now keeps this row
            self.events.on_row(row)

    def monitor_section(self, started: float) -> dict[str, Any]:
        """bench --monitor, once the sampler stopped (so a poll follows every burst): each row's readings over
        its unit's own bursts and their flags; and result['monitor'], the sampler's cost and unit timelines."""
        from siliconlab.bench.timeline import apply_flags, clock_reference, row_monitor, unit_timeline

        assert self.watch is not None
        samples, summary = list(self.watch.sampler.samples), self.watch.sampler.summary()
        reference = clock_reference(samples)
        for row in self.result["results"]:
            spans = self.spans.get(self.row_keys.get(id(row), ("", -1)), [])
            row["monitor"] = row_monitor(samples, spans, reference)
            apply_flags(row)
        per_unit: dict[str, list[tuple[float, float]]] = {}
        for (unit, _), spans in self.spans.items():
            per_unit.setdefault(unit, []).extend(spans)
        units = {unit: unit_timeline(samples, sorted(spans), started) for unit, spans in per_unit.items()}
        return {"interval_s": summary["interval_s"], "polls": summary["samples"], "cpu_ms": summary["cpu_ms"],
                "unavailable": summary["unavailable"], "units": units}  # fmt: skip


def run_plan(plan: BenchPlan, events: Events | None = None) -> dict[str, Any]:
    from siliconlab.bench.timeline import MONITOR_INTERVAL_S

    session = _Session(plan, events or Events())
    result = session.result
    session.events.on_unit("machine", "checking the load before timing")
    started = time.perf_counter()
    watch = ContentionWatch(MONITOR_INTERVAL_S, hardware=True) if plan.monitor else ContentionWatch()
    session.watch = watch.start()
    if plan.measure_floor:
        session.events.on_unit("machine floor", "measuring GEMM rates")
        result["floors"] = measure_floors({u.device for u in plan.units}, plan.threads, quick=plan.quick)
    groups = [plan.units] if plan.interleaved else [[unit] for unit in plan.units]
    try:
        for units in groups:
            session.time_group(units)
    finally:
        for job in session.jobs:
            job.unlink(missing_ok=True)
        result["machine_load"] = session.watch.stop()
        if plan.monitor:
            result["monitor"] = session.monitor_section(started)
    finish(result, plan.baseline)
    result["complete"] = True
    return result
