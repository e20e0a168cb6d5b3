"""The load itself: a closed-loop concurrency sweep and open-loop Poisson arrivals, each step bounded in time
and count, every answer optionally checked against the single-request answer for the same text."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.serve.loadtest.client import TritonLoadClient, error_kind

#: Hard bounds: a typo must not start an hour-long or million-connection run.
MAX_CONCURRENCY = 1024
MAX_STEPS = 32
MAX_STEP_SECONDS = 600.0
MAX_RATE = 20000.0
#: Open loop: requests in flight beyond this are not sent (counted as `not_sent`), so memory stays bounded.
MAX_OUTSTANDING = 4096


@dataclass(frozen=True)
class LoadPlan:
    url: str
    protocol: str  # http | grpc
    model: str
    texts: tuple[str, ...]
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    rates: tuple[float, ...] = ()  # open loop (requests/s); empty: closed loop only
    duration: float = 10.0  # seconds per step
    requests: int | None = None  # per-step cap
    timeout: float = 30.0  # per request
    check: float | None = None  # cosine tolerance against the single-request answer
    seed: int = 7

    def validate(self) -> LoadPlan:
        if self.protocol not in ("http", "grpc"):
            raise UsageError(f"--protocol must be http or grpc, got '{self.protocol}'")
        if not self.texts:
            raise UsageError("no texts to send")
        if any(c < 1 or c > MAX_CONCURRENCY for c in self.concurrency):
            raise UsageError(f"--concurrency values must be 1..{MAX_CONCURRENCY}")
        if any(r <= 0 or r > MAX_RATE for r in self.rates):
            raise UsageError(f"--rate values must be > 0 and <= {MAX_RATE:g} requests/s")
        if len(self.concurrency) + len(self.rates) > MAX_STEPS:
            raise UsageError(f"at most {MAX_STEPS} steps per run")
        if not 0 < self.duration <= MAX_STEP_SECONDS:
            raise UsageError(f"--duration must be > 0 and <= {MAX_STEP_SECONDS:g} s")
        if self.requests is not None and self.requests < 1:
            raise UsageError("--requests must be >= 1")
        if self.timeout <= 0:
            raise UsageError("--timeout must be > 0")
        if self.check is not None and not 0 < self.check <= 1:
            raise UsageError("--check takes a cosine tolerance in (0, 1], e.g. 0.99")
        return self


@dataclass
class Tally:
    """What one step's requests met: latencies of the answered ones, error kinds, checked answers."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    sent: int = 0
    wrong: int = 0
    label_changed: int = 0
    min_cosine: float = 1.0
    first_error: dict[str, str] = field(default_factory=dict)
    last_done: float = 0.0


class Checker:
    """The single-request answers, one per distinct text, and the comparison of each load answer with them."""

    def __init__(self, tolerance: float | None):
        self.tolerance = tolerance
        self.reference: dict[int, dict[str, np.ndarray]] = {}

    async def build(self, client: TritonLoadClient, texts: tuple[str, ...], timeout: float) -> None:
        for index, text in enumerate(texts):  # one at a time: nothing for the server to batch it with
            self.reference[index] = await client.infer(text, timeout)

    def judge(self, index: int, answer: dict[str, np.ndarray], checked: str, tally: Tally) -> None:
        if self.tolerance is None or index not in self.reference:
            return
        ref = self.reference[index]
        a = np.asarray(answer[checked], dtype=np.float64).ravel()
        b = np.asarray(ref[checked], dtype=np.float64).ravel()
        cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30)) if a.shape == b.shape else -1.0
        tally.min_cosine = min(tally.min_cosine, cosine)
        if not cosine >= self.tolerance:
            tally.wrong += 1
        if "label" in answer and not np.array_equal(answer["label"], ref["label"]):
            tally.label_changed += 1


async def _one(client: TritonLoadClient, plan: LoadPlan, checker: Checker, index: int, tally: Tally) -> None:
    tally.sent += 1
    started = time.perf_counter()
    try:
        answer = await client.infer(plan.texts[index], plan.timeout)
    except Exception as exc:  # every failure is counted by kind; the load goes on
        kind = error_kind(exc)
        tally.errors[kind] += 1
        tally.first_error.setdefault(kind, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else kind)
    else:
        tally.latencies_ms.append((time.perf_counter() - started) * 1e3)
        assert client.signature is not None
        checker.judge(index, answer, client.signature.checked, tally)
    tally.last_done = time.perf_counter()


async def closed_loop(client: TritonLoadClient, plan: LoadPlan, checker: Checker, concurrency: int) -> Tally:
    """`concurrency` users, each sending its next request as soon as the last one is answered."""
    tally, cursor = Tally(), iter(range(10**12))
    end = time.perf_counter() + plan.duration
    cap = plan.requests or 10**12

    async def user() -> None:
        while time.perf_counter() < end and tally.sent < cap:
            await _one(client, plan, checker, next(cursor) % len(plan.texts), tally)

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return tally


async def open_loop(client: TritonLoadClient, plan: LoadPlan, checker: Checker, rate: float) -> Tally:
    """Poisson arrivals at `rate`/s whatever the answers do: how a server meets traffic it cannot refuse."""
    tally, rng = Tally(), np.random.default_rng(plan.seed)
    start = time.perf_counter()
    cap = plan.requests or 10**12
    pending: set[asyncio.Task] = set()
    due, count = 0.0, 0
    while count < cap:
        due += float(rng.exponential(1.0 / rate))
        if due >= plan.duration:
            break
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(pending) >= MAX_OUTSTANDING:
            tally.errors["not_sent"] += 1
        else:
            task = asyncio.create_task(_one(client, plan, checker, count % len(plan.texts), tally))
            pending.add(task)
            task.add_done_callback(pending.discard)
        count += 1
    if pending:
        await asyncio.gather(*pending)
    return tally


async def settled_statistics(client: Any, calm: float = 0.02, patience: float = 2.0) -> dict[str, Any] | None:
    """Triton counts a request in its statistics just *after* sending the answer, so a read taken the moment the
    last answer lands can miss it (seen on a fast Xeon: 189 counted for 188 sent, the next step one short).
    Read until two reads `calm` seconds apart agree, for at most `patience` seconds."""
    stats = await client.statistics()
    deadline = time.perf_counter() + patience
    while stats is not None and time.perf_counter() < deadline:
        await asyncio.sleep(calm)
        again = await client.statistics()
        if again == stats:
            break
        stats = again
    return stats


def stats_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, float] | None:
    """Server-side time per request over one step from Triton's cumulative statistics: queue vs compute."""
    if not before or not after:
        return None

    def ns(stats: dict[str, Any], key: str) -> tuple[int, int]:
        entry = stats.get("inference_stats", {}).get(key, {})
        return int(entry.get("count", 0)), int(entry.get("ns", 0))

    done = ns(after, "success")[0] - ns(before, "success")[0]
    if done <= 0:
        return None
    out: dict[str, float] = {"requests": float(done)}
    for key in ("queue", "compute_input", "compute_infer", "compute_output"):
        out[f"{key}_ms"] = (ns(after, key)[1] - ns(before, key)[1]) / done / 1e6
    executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
    inferences = int(after.get("inference_count", 0)) - int(before.get("inference_count", 0))
    out["mean_batch"] = inferences / executions if executions > 0 else float("nan")
    return out


def summarize(mode: str, level: float, tally: Tally, seconds: float, server: dict[str, float] | None) -> dict:
    """One row of the report: throughput counts answered requests only; percentiles are of answered ones."""
    lat = np.asarray(tally.latencies_ms) if tally.latencies_ms else np.asarray([np.nan])
    answered = len(tally.latencies_ms)
    errors = {kind: int(tally.errors.get(kind, 0)) for kind in sorted(tally.errors)}
    lost = sum(tally.errors.get(k, 0) for k in ("timeout", "connection", "5xx", "other"))
    return {
        "mode": mode,
        "concurrency" if mode == "closed" else "rate": level,
        "seconds": round(seconds, 3),
        "sent": tally.sent,
        "answered": answered,
        "errors": errors,
        "first_error": tally.first_error,
        "accepted_lost": int(lost),
        "wrong": tally.wrong,
        "label_changed": tally.label_changed,
        "min_cosine": tally.min_cosine if answered else None,
        "throughput_rps": answered / seconds if seconds > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_ms": float(lat.mean()),
        "max_ms": float(lat.max()),
        "server": server,
    }


async def run_plan(plan: LoadPlan, on_step: Any = None, client: Any = None) -> tuple[list[dict], dict[str, Any]]:
    """Every step of the plan against one server; rows come back as they finish (on_step(row)). `client`: any
    object with TritonLoadClient's async interface (a peer server's client, in benchmarks/serving/)."""
    plan.validate()
    connections = max((*plan.concurrency, 1)) if not plan.rates else MAX_OUTSTANDING
    client = client or TritonLoadClient(plan.url, plan.protocol, plan.model, connections)
    async with client:
        await client.ready()
        checker = Checker(plan.check)
        warm = time.perf_counter()
        if plan.check is not None:
            await checker.build(client, plan.texts, plan.timeout)
        else:  # warm-up: first requests pay for lazy initialisation the steps should not see
            for text in plan.texts[:16]:
                await client.infer(text, plan.timeout)
        info = {"signature": client.signature.__dict__, "warmup_seconds": round(time.perf_counter() - warm, 3)}
        steps = [("closed", float(c)) for c in plan.concurrency] + [("open", r) for r in plan.rates]
        rows = []
        after = await settled_statistics(client)
        for mode, level in steps:
            before = after
            started = time.perf_counter()
            if mode == "closed":
                tally = await closed_loop(client, plan, checker, int(level))
            else:
                tally = await open_loop(client, plan, checker, level)
            seconds = max(tally.last_done, started) - started
            after = await settled_statistics(client)
            row = summarize(mode, int(level) if mode == "closed" else level, tally, seconds, stats_delta(before, after))
            rows.append(row)
            if on_step:
                on_step(row)
        if client.statistics_error:
            info["statistics_error"] = f"server statistics not readable: {client.statistics_error}"
    return rows, info
