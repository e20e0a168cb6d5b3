"""What one `bench` run will do, built from the user's options: which units, which workloads, how long to time.

The CLI only parses options into `BenchOptions`; every decision (baseline added, unavailable units skipped,
workload chosen and validated against the model) is made here, so it is the same from any caller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siliconlab.bench import workloads as wl
from siliconlab.bench.timing import TimingConfig
from siliconlab.bench.workloads import Workload
from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.models.base import ModelSource
from siliconlab.units.base import Unit

MODEL_DIMENSIONS = ("hidden_size", "intermediate_size", "num_hidden_layers")  # what encoder FLOPs need


@dataclass(frozen=True)
class BenchOptions:
    """The `bench` command's options, parsed but not yet checked against the model or this machine."""

    cache_dir: Path  # the artifact cache: converted models are reused from it
    model: str = "minilm"
    units: str = "all"  # comma-separated names, or 'all' (then units that can't be timed here are skipped)
    batches: tuple[int, ...] = (1,)
    seqs: tuple[int, ...] = (128,)
    workload: str = "fixed"  # 'fixed' (the batches x seqs grid) or 'text' (a stream of real sentences)
    text: str | None = None  # one real text at its natural length (wins over `workload`)
    texts: int = 200  # real sentences in the text workload
    budget_ms: float | None = None  # throughput under a p90 budget (wins over `workload`)
    baseline: str = "torch-cpu-fp32"
    threads: int | None = None  # None: the machine's physical cores
    quick: bool = False
    warmup: int | None = None
    min_iters: int | None = None
    min_seconds: float | None = None
    floor: bool = True
    interleave: bool = True
    omp_wait_policy: str = "default"  # 'passive', 'active' or 'default' (leave OpenMP's own setting alone)
    monitor: bool = False  # record what the hardware did per unit (bench/timeline.py)


OMP_POLICIES = ("passive", "active", "default")


@dataclass(frozen=True)
class BenchPlan:
    source: ModelSource
    units: list[Unit]
    workloads: list[Workload]
    cache_dir: Path
    threads: int
    timing: TimingConfig
    baseline: str
    config: dict[str, int]  # model dimensions for FLOPs
    measure_floor: bool = True
    quick: bool = False
    unit_timeout_s: float = 3600.0  # a workload's first burst on a unit (inputs prepared, warm-up)
    start_timeout_s: float = 3600.0  # converting or reusing a unit's artifact, and loading it (int8 calibration)
    interleave: bool = True
    #: Units left out because they cannot be timed here (name -> reason); only when all units were asked for.
    skipped: dict[str, str] = field(default_factory=dict)
    #: OpenMP's wait policy in every timed unit process (docs/benchmarking.md, "Baseline threading").
    omp_wait_policy: str = "default"
    #: Record a hardware timeline per unit (bench --monitor, bench/timeline.py).
    monitor: bool = False

    @property
    def process_env(self) -> dict[str, str]:
        """Environment of the timed unit processes: OpenMP reads its wait policy when torch loads."""
        return {} if self.omp_wait_policy == "default" else {"OMP_WAIT_POLICY": self.omp_wait_policy.upper()}

    @property
    def interleaved(self) -> bool:
        """Timed in interleaved rounds: asked for, more than one unit, and every workload can be cut in bursts."""
        return self.interleave and len(self.units) > 1 and not any(w.times_alone for w in self.workloads)


def timing_config(options: BenchOptions) -> TimingConfig:
    timing = TimingConfig.quick() if options.quick else TimingConfig()
    given = {"warmup_iters": options.warmup, "min_iters": options.min_iters, "min_seconds": options.min_seconds}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    timing = dataclasses.replace(timing, **overrides)
    if timing.min_iters < 1 or timing.min_seconds < 0 or timing.warmup_iters < 0:
        raise UsageError("--min-iters must be >= 1, --min-seconds and --warmup >= 0")
    return timing


def _check(options: BenchOptions) -> None:
    if options.omp_wait_policy not in OMP_POLICIES:
        raise UsageError(f"--omp-wait-policy must be one of {', '.join(OMP_POLICIES)}, got '{options.omp_wait_policy}'")
    """The checks that need neither the model nor the units, so a typo fails before anything is loaded."""
    if options.workload not in ("fixed", "text"):
        raise UsageError(f"--workload must be 'fixed' or 'text', got '{options.workload}'")
    if options.texts < 1:
        raise UsageError(f"--texts must be >= 1, got {options.texts}")
    if options.threads is not None and options.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {options.threads}")
    if not options.batches or not options.seqs or min(options.batches + options.seqs) < 1:
        raise UsageError("--batch and --seq take positive integers")


def select(options: BenchOptions) -> tuple[list[Unit], dict[str, str]]:
    """The units to time, baseline first when it is not among them and can run here; and those skipped, why."""
    from siliconlab.units import get_unit, select_units

    selected, skipped = select_units(options.units), {}
    if options.units.strip() == "all":
        for unit in selected:
            available = unit.timing_availability()
            if not available.ok:
                skipped[unit.name] = available.reason
        selected = [u for u in selected if u.name not in skipped]
    else:
        cannot = {u.name: u.availability().reason for u in selected if not u.availability().ok}
        if cannot:  # say so now, not after minutes of converting (CoreML converts on Linux but cannot run)
            listed = "; ".join(f"{name}: {reason}" for name, reason in cannot.items())
            raise UsageError(f"cannot time here — {listed} (see `siliconlab units`)")
    base = get_unit(options.baseline)
    if base.availability().ok and base.name not in {u.name for u in selected}:
        selected.insert(0, base)
    if not selected:
        raise SiliconlabError("no compute unit is available on this machine (see `siliconlab units`)")
    return selected, skipped


def stream_texts(model: str, count: int) -> list[str]:
    """The real-text workload's texts: a task model's own kind of text (reviews for sentiment, messages for
    spam; from the training side of its split), else the mixed stream of reviews and SMS."""
    from siliconlab.data import real_text_stream
    from siliconlab.data.tasks import TASKS, split

    if model in TASKS:
        frame = split(model, "train", limit=count)
        return frame["text"].sample(frac=1.0, random_state=7).tolist()
    return real_text_stream(count)


def choose_workloads(options: BenchOptions, tokenizer, max_length: int) -> list[Workload]:
    batches, seqs = list(options.batches), list(options.seqs)
    if options.text is not None:
        from siliconlab.text import encode

        encode(tokenizer, [options.text], max_length)  # validates: empty text, truncation warning
        return wl.text_stream([options.text], batches)
    if options.budget_ms is not None:
        return wl.budget_search(seqs, options.budget_ms, max_length)
    if options.workload == "text":
        return wl.text_stream(stream_texts(options.model, options.texts), batches)
    return wl.fixed_grid(batches, seqs, max_length)


def build_plan(options: BenchOptions) -> BenchPlan:
    """Check the options and decide everything the run needs; bad input raises one clear UsageError."""
    from siliconlab.bench.machine import default_threads
    from siliconlab.models import resolve

    _check(options)
    timing = timing_config(options)
    units, skipped = select(options)  # before the model: a unit-name mistake answers at once
    source = resolve(options.model)
    loaded = source.load()
    workloads = choose_workloads(options, loaded.tokenizer, loaded.max_length)
    streams = [max(len(w.texts) // w.batch, 1) for w in workloads if isinstance(w, wl.TextStream)]
    if streams and timing.min_iters < max(streams):  # at least one whole pass over the texts per unit
        timing = dataclasses.replace(timing, min_iters=max(streams))
    config = {k: int(getattr(loaded.config, k)) for k in MODEL_DIMENSIONS}
    return BenchPlan(
        source=source,
        units=units,
        workloads=workloads,
        cache_dir=options.cache_dir,
        threads=options.threads or default_threads(),
        timing=timing,
        baseline=options.baseline,
        config=config,
        measure_floor=options.floor,
        quick=options.quick,
        interleave=options.interleave,
        skipped=skipped,
        omp_wait_policy=options.omp_wait_policy,
        monitor=options.monitor,
    )
