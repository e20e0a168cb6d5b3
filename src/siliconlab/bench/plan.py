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
from siliconlab.bench.kinds import ModelKind, kind_of, unit_named, units_named
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
    #: None: the kind's default. Encoders: (1,) x (128,). Generation: decode batches (1, 8), TTFT prompts
    #: (32, 256, 1024) within the context.
    batches: tuple[int, ...] | None = None
    seqs: tuple[int, ...] | None = None
    workload: str | None = None  # 'fixed' (the batches x seqs grid, the default) or 'text' (real sentences)
    text: str | None = None  # one real text at its natural length (wins over `workload`)
    texts: int | None = None  # real sentences in the text workload (default 200)
    budget_ms: float | None = None  # throughput under a p90 budget (wins over `workload`)
    baseline: str = "torch-cpu-fp32"
    threads: int | None = None  # None: the machine's physical cores
    quick: bool = False
    warmup: int | None = None
    min_iters: int | None = None
    min_seconds: float | None = None
    floor: bool | None = None  # measure the GEMM floor (default: where the rows count FLOPs, i.e. encoders)
    interleave: bool = True
    omp_wait_policy: str = "default"  # 'passive', 'active' or 'default' (leave OpenMP's own setting alone)
    monitor: bool = False  # record what the hardware did per unit (bench/timeline.py)


OMP_POLICIES = ("passive", "active", "default")


@dataclass(frozen=True)
class BenchPlan:
    """Everything one run does, decided up front; `kind` says which units, converter and timing the worker uses."""

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
    #: The model kind (bench/kinds.py): which registry the units come from, how the worker converts and loads.
    kind: ModelKind = "encoder"

    @property
    def process_env(self) -> dict[str, str]:
        """Environment of the timed unit processes: OpenMP reads its wait policy when torch loads; decoder
        processes also get OMP_NUM_THREADS = threads (what the generation bench always set)."""
        env = {} if self.omp_wait_policy == "default" else {"OMP_WAIT_POLICY": self.omp_wait_policy.upper()}
        return env if self.kind == "encoder" else env | {"OMP_NUM_THREADS": str(self.threads)}

    @property
    def interleaved(self) -> bool:
        """Timed in interleaved rounds: asked for, more than one unit, and every workload can be cut in bursts."""
        return self.interleave and len(self.units) > 1 and not any(w.times_alone for w in self.workloads)


def timing_config(options: BenchOptions, kind: ModelKind = "encoder") -> TimingConfig:
    if kind == "encoder":
        timing = TimingConfig.quick() if options.quick else TimingConfig()
    else:
        timing = TimingConfig.generation(options.quick)
    overrides: dict[str, Any] = {"warmup_iters": options.warmup, "min_iters": options.min_iters,
                                 "min_seconds": options.min_seconds}  # fmt: skip
    timing = dataclasses.replace(timing, **{k: v for k, v in overrides.items() if v is not None})
    if timing.min_iters < 1 or timing.min_seconds < 0 or timing.warmup_iters < 0:
        raise UsageError("--min-iters must be >= 1, --min-seconds and --warmup >= 0")
    return timing


def _check(options: BenchOptions) -> None:
    """The checks that need neither the model nor the units, so a typo fails before anything is loaded."""
    if options.omp_wait_policy not in OMP_POLICIES:
        raise UsageError(f"--omp-wait-policy must be one of {', '.join(OMP_POLICIES)}, got '{options.omp_wait_policy}'")
    if options.workload not in (None, "fixed", "text"):
        raise UsageError(f"--workload must be 'fixed' or 'text', got '{options.workload}'")
    if options.texts is not None and options.texts < 1:
        raise UsageError(f"--texts must be >= 1, got {options.texts}")
    if options.threads is not None and options.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {options.threads}")
    for given in (options.batches, options.seqs):
        if given is not None and (not given or min(given) < 1):
            raise UsageError("--batch and --seq take positive integers")


#: Options with no meaning for a generation workload, and why: refused, never silently dropped.
GENERATION_REFUSALS = {
    "text": "--text times one encoder input; a generative model's prompts are real chat questions (--seq sets "
    "their lengths)",
    "texts": "--texts sizes the encoder's real-text stream; a generative model's prompts are real chat questions",
    "budget_ms": "--budget-ms searches an encoder's batch under a latency budget; generation rows are TTFT and "
    "decode rate (--batch sets the decode batches)",
    "floor": "--floor holds FLOP rates to the machine's GEMM floor; generation rows count no FLOPs",
}


def refuse_for_generation(options: BenchOptions) -> None:
    """Every option a generation plan cannot honour is one UsageError with its reason."""
    if options.workload == "text":
        raise UsageError("--workload text streams real sentences through an encoder; a generative model's prompts "
                         "are real chat questions already (--seq sets their lengths)")  # fmt: skip
    for name, reason in GENERATION_REFUSALS.items():
        if getattr(options, name) not in (None, False):
            raise UsageError(f"{reason}: {options.model} is a generative model")


def select(options: BenchOptions, kind: ModelKind = "encoder") -> tuple[list[Unit], dict[str, str]]:
    """The units to time, baseline first when it is not among them and can run here; and those skipped, why."""
    selected, skipped = units_named(kind, options.units), {}
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
    base = unit_named(kind, options.baseline)
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
    batches, seqs = list(options.batches or (1,)), list(options.seqs or (128,))
    if options.text is not None:
        from siliconlab.text import encode

        encode(tokenizer, [options.text], max_length)  # validates: empty text, truncation warning
        return wl.text_stream([options.text], batches)
    if options.budget_ms is not None:
        return wl.budget_search(seqs, options.budget_ms, max_length)
    if options.workload == "text":
        return wl.text_stream(stream_texts(options.model, options.texts or 200), batches)
    return wl.fixed_grid(batches, seqs, max_length)


def early_source(model: str) -> ModelSource | None:
    """The model's source when resolving it costs nothing (a built-in name or a local folder), so its kind is
    known before the units are chosen; None for a hub id (an encoder, fetched after the unit names check out)."""
    from siliconlab.models import BUILTIN, resolve

    return resolve(model) if model in BUILTIN or Path(model).expanduser().is_dir() else None


def build_plan(options: BenchOptions, source: ModelSource | None = None) -> BenchPlan:
    """Check the options and decide everything the run needs; bad input raises one clear UsageError.

    `source` skips resolving `options.model` (a caller holding a source that no name resolves to)."""
    from siliconlab.bench.machine import default_threads
    from siliconlab.models import resolve

    _check(options)
    source = source or early_source(options.model)
    kind = kind_of(source) if source is not None else "encoder"
    if kind != "encoder":
        refuse_for_generation(options)
    timing = timing_config(options, kind)
    units, skipped = select(options, kind)  # before loading the model: a unit-name mistake answers at once
    source = source or resolve(options.model)
    if kind == "encoder":
        loaded = source.load()
        workloads = choose_workloads(options, loaded.tokenizer, loaded.max_length)
        config = {k: int(getattr(loaded.config, k)) for k in MODEL_DIMENSIONS}
    else:
        from siliconlab.models.generative import context_length

        context = context_length(getattr(source, "config", None))
        workloads = wl.generation_workloads(options.quick, context, options.batches, options.seqs)
        config = {}
    streams = [max(len(w.texts) // w.batch, 1) for w in workloads if isinstance(w, wl.TextStream)]
    if streams and timing.min_iters < max(streams):  # at least one whole pass over the texts per unit
        timing = dataclasses.replace(timing, min_iters=max(streams))
    return BenchPlan(
        source=source,
        units=units,
        workloads=workloads,
        cache_dir=options.cache_dir,
        threads=options.threads or default_threads(),
        timing=timing,
        baseline=options.baseline,
        config=config,
        measure_floor=kind == "encoder" and options.floor is not False,
        quick=options.quick,
        interleave=options.interleave,
        skipped=skipped,
        omp_wait_policy=options.omp_wait_policy,
        monitor=options.monitor,
        kind=kind,
    )
