"""The demo session: units loaded once, answering one after another, with a running summary.

Units never answer at the same time (one lock for the whole session), so on a small machine one unit's
latency is not inflated by another's work; a quick bench started from the web page holds the same lock, so
the demo's units pause while it measures. The default ("best") unit answers first, the others follow, and
each answer is compared with torch-cpu-fp32's, the reference every artifact was gated against.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siliconlab.demo.scenarios import SCENARIOS, Answer, ask, build_engine
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.text import check_text

REFERENCE = "torch-cpu-fp32"
#: Answers per unit before the summary states a speedup (a median of fewer is one noisy sample).
MIN_SPEEDUP_SAMPLES = 3
#: Longer inputs are refused with a message: a demo answers sentences and messages, not files.
MAX_CHARS = 10_000


def check_input(text: Any) -> str:
    """The user's text as a unit needs it, or a UsageError saying in one line what is wrong."""
    text = check_text(text, "the text")
    if len(text) > MAX_CHARS:
        raise UsageError(
            f"the text is {len(text):,} characters long; the demo takes up to {MAX_CHARS:,} (paste a shorter passage)"
        )
    return text


def demo_units(spec: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Units to run (every available, timed unit unless named) and {unit: why not} for the others."""
    from siliconlab.units import REGISTRY, get_unit

    if spec:
        named = [get_unit(name).name for name in dict.fromkeys(spec)]
        skipped = {}
        for name in named:
            available = REGISTRY[name]().availability()
            if not available.ok:
                skipped[name] = available.reason
        runnable = [n for n in named if n not in skipped]
        if not runnable:
            raise UsageError("; ".join(f"unit '{n}' cannot run here: {why}" for n, why in skipped.items()))
        return runnable, skipped
    chosen, skipped = [], {}
    for name, unit in REGISTRY.items():
        info = unit().describe()
        if info["available"] and info["timed"]:
            chosen.append(name)
        else:
            skipped[name] = info["reason"] or info["timing_reason"]
    return chosen, skipped


@dataclass
class UnitResult:
    unit: str
    ms: float | None = None
    answer: Answer | None = None
    error: str | None = None
    agrees: bool | None = None  # None: no reference answer to compare with

    def as_dict(self) -> dict[str, Any]:
        answer = self.answer
        return {"unit": self.unit, "ms": self.ms, "answer": answer.summary if answer else None,
                "scores": answer.scores if answer else None, "detail": answer.detail if answer else None,
                "agrees_fp32": self.agrees, "error": self.error}  # fmt: skip


@dataclass
class Round:
    """One text answered by every unit of a scenario (filled in as the units answer)."""

    scenario: str
    text: str
    results: list[UnitResult] = field(default_factory=list)
    done: bool = False

    @property
    def first(self) -> UnitResult | None:
        return next((r for r in self.results if r.answer is not None), None)

    def compare(self) -> None:
        reference = next((r.answer for r in self.results if r.unit == REFERENCE and r.answer is not None), None)
        for result in self.results:
            if reference is not None and result.answer is not None:
                result.agrees = result.answer.key == reference.key

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "text": self.text, "results": [r.as_dict() for r in self.results]}


class DemoSession:
    """Loads each scenario's units once (lazily, on the scenario's first use) and answers texts with them."""

    def __init__(self, units: list[str], cache: Path | None = None, threads: int | None = None):
        if not units:
            raise UsageError("no unit to run the demo on")
        self.units = list(units)
        self.cache = cache
        self.threads = threads
        self.lock = threading.Lock()  # held while units answer and while a bench runs
        self.engines: dict[str, dict[str, Any]] = {}  # scenario -> unit -> engine, in answering order
        self.failures: dict[str, dict[str, str]] = {}  # scenario -> unit -> why it could not load
        self.latencies: dict[tuple[str, str], list[float]] = {}
        self._pipelines: dict[tuple[str, str], Any] = {}  # (model, unit): chat and search share MiniLM

    def order(self, model: str) -> list[str]:
        """The units, the model's best one (latest stable bench here, else the default order) first."""
        from siliconlab.bench.machine import machine_info
        from siliconlab.convert.pipeline import model_folder_name
        from siliconlab.models import resolve
        from siliconlab.paths import default_cache
        from siliconlab.tasks.best import ranked_units

        cache = Path(self.cache) if self.cache is not None else default_cache()
        ranked, _ = ranked_units(cache / model_folder_name(resolve(model)), machine_info())
        first = [u for u in ranked if u in self.units]
        return first + [u for u in self.units if u not in first]

    def prepare(self, key: str, on_unit: Callable[[str, str | None], None] | None = None) -> dict[str, Any]:
        """Load the scenario on every unit (once); a unit that fails is kept out with its reason."""
        if key not in SCENARIOS:
            raise UsageError(f"unknown scenario '{key}': choose from {', '.join(SCENARIOS)}")
        with self.lock:  # loading is work too: it must not overlap another unit's timed answer
            if key not in self.engines:
                self._load(key, on_unit)
        return self.engines[key]

    def _load(self, key: str, on_unit: Callable[[str, str | None], None] | None) -> None:
        from siliconlab.tasks import load

        model = SCENARIOS[key].model
        engines, failures = {}, {}
        for unit in self.order(model):
            try:
                pipeline = self._pipelines.get((model, unit))
                if pipeline is None:
                    pipeline = load(model, unit=unit, cache=self.cache, threads=self.threads)
                    self._pipelines[(model, unit)] = pipeline
                engine = build_engine(key, pipeline)
                ask(key, engine, "warm-up: the first call allocates, it is not the unit's speed")
                engines[unit] = engine
                if on_unit:
                    on_unit(unit, None)
            except Exception as exc:  # one unit failing must not stop the demo: say why, run the others
                failures[unit] = _one_line(exc)
                if on_unit:
                    on_unit(unit, failures[unit])
        self.failures[key] = failures
        if not engines:
            reasons = "; ".join(f"{u}: {why}" for u, why in failures.items())
            raise SiliconlabError(f"no unit could load the {key} scenario ({reasons})")
        self.engines[key] = engines

    def stream(self, key: str, text: Any) -> Iterator[Round]:
        """Answer `text` on each unit in turn (lock held), yielding the round after every unit."""
        text = check_input(text)
        engines = self.prepare(key)
        current = Round(key, text, [UnitResult(unit) for unit in engines])
        with self.lock:
            for result in current.results:
                begin = time.perf_counter()
                try:
                    result.answer = ask(key, engines[result.unit], text)
                    result.ms = (time.perf_counter() - begin) * 1e3
                    self.latencies.setdefault((key, result.unit), []).append(result.ms)
                except UsageError:
                    raise
                except Exception as exc:  # a unit's failure is that unit's row, not the session's end
                    result.error = _one_line(exc)
                current.compare()
                yield current
        current.done = True
        yield current

    def answer(self, key: str, text: Any) -> Round:
        rounds = list(self.stream(key, text))
        return rounds[-1]

    def summary(self) -> list[dict[str, Any]]:
        """Median latency per (scenario, unit) this session and its speedup over torch-cpu-fp32: a ratio of two
        medians of at least MIN_SPEEDUP_SAMPLES answers each, else None (one answer gave "23.91x": noise)."""
        rows = []
        for key in SCENARIOS:
            reference = self.latencies.get((key, REFERENCE)) or []
            ref_median = statistics.median(reference) if len(reference) >= MIN_SPEEDUP_SAMPLES else None
            for unit in self.engines.get(key, {}):
                samples = self.latencies.get((key, unit))
                if not samples:
                    continue
                median = statistics.median(samples)
                enough = len(samples) >= MIN_SPEEDUP_SAMPLES
                speedup = ref_median / median if ref_median is not None and enough else None
                rows.append({"scenario": key, "unit": unit, "answers": len(samples), "median_ms": median,
                             "speedup_vs_fp32": speedup})  # fmt: skip
        return rows


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
