"""`siliconlab bench`: parse the options, hand them to bench/, print progress and the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from siliconlab.cli.common import DEFAULT_CACHE, console, err, handles_errors, int_list, resolve_threads
from siliconlab.errors import SiliconlabError, UsageError


@handles_errors
def bench(
    model: Annotated[
        str, typer.Argument(help="minilm (default), bert-base, a local HF directory or hub id.")
    ] = "minilm",
    units: Annotated[str, typer.Option("--units", "-u", help="Comma-separated unit names, or 'all'.")] = "all",
    batch: Annotated[str, typer.Option(help="Batch size(s), comma-separated, e.g. 1,8,32.")] = "1",
    seq: Annotated[str, typer.Option(help="Sequence length(s) in tokens, comma-separated, e.g. 16,128,384.")] = "128",
    workload: Annotated[
        str, typer.Option(help="fixed: the --batch x --seq grid; text: a stream of real sentences at natural lengths.")
    ] = "fixed",
    text: Annotated[str | None, typer.Option(help="Time this one real text at its natural length.")] = None,
    texts: Annotated[int, typer.Option(help="Number of real sentences in the text workload.")] = 200,
    budget_ms: Annotated[
        float | None, typer.Option(help="Throughput: the largest batch whose p90 stays within this budget.")
    ] = None,
    baseline: Annotated[
        str, typer.Option(help="Unit that speedups are measured against, same run.")
    ] = "torch-cpu-fp32",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON, Markdown and PNG results.")] = Path(
        "results"
    ),
    cache: Annotated[Path, typer.Option(help="Artifact cache (converted models are reused).")] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="CPU threads per unit (default: physical cores).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations: a fast look, not a result to quote.")] = (
        False
    ),
    warmup: Annotated[int | None, typer.Option(help="Warm-up iterations (also at least warmup-seconds).")] = None,
    min_iters: Annotated[int | None, typer.Option(help="Measure at least this many iterations...")] = None,
    min_seconds: Annotated[float | None, typer.Option(help="...and for at least this many seconds.")] = None,
    floor: Annotated[bool, typer.Option(help="Measure the machine's GEMM floor for % of floor.")] = True,
    charts: Annotated[bool, typer.Option(help="Write PNG charts next to the results.")] = True,
    interleave: Annotated[
        bool, typer.Option(help="Time the units in alternating short bursts (ratios hold on a noisy machine).")
    ] = True,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column of the results table.")] = False,
) -> None:
    """Time MODEL on each available unit, each in its own process; p50/p90/p99 with a CI, speedup vs the
    baseline from the same run, % of the machine's measured GEMM floor, energy where a counter exists.
    Units are timed interleaved (rounds of bursts) unless --no-interleave."""
    import dataclasses

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from siliconlab.bench import workloads as wl
    from siliconlab.bench.charts import write_charts
    from siliconlab.bench.report import markdown, print_table, result_paths, write_result
    from siliconlab.bench.runner import BenchPlan, Events, finish, run_plan
    from siliconlab.bench.timing import TimingConfig
    from siliconlab.data import real_text_stream
    from siliconlab.models import resolve
    from siliconlab.units import get_unit, select_units

    batches, seqs = int_list(batch, "--batch"), int_list(seq, "--seq")
    if workload not in ("fixed", "text"):
        raise UsageError(f"--workload must be 'fixed' or 'text', got '{workload}'")
    selected = select_units(units)
    source = resolve(model)  # bad input fails with its one line before any other output
    if units.strip() == "all":
        for unit in [u for u in selected if not u.timing_availability().ok]:
            err.print(f"  skipping {unit.name}: {unit.timing_availability().reason} (name it in --units to time it)")
            selected.remove(unit)
    base_unit = get_unit(baseline)
    if base_unit.availability().ok and base_unit.name not in {u.name for u in selected}:
        selected.insert(0, base_unit)
    if not selected:
        raise SiliconlabError("no compute unit is available on this machine (see `siliconlab units`)")
    loaded = source.load()
    if text is not None:
        from siliconlab.text import encode

        encode(loaded.tokenizer, [text], loaded.max_length)  # validates: empty text, truncation warning
        specs = wl.text_stream([text], batches)
    elif budget_ms is not None:
        specs = wl.budget_search(seqs, budget_ms, loaded.max_length)
    elif workload == "text":
        if texts < 1:
            raise UsageError(f"--texts must be >= 1, got {texts}")
        specs = wl.text_stream(real_text_stream(texts), batches)
    else:
        specs = wl.fixed_grid(batches, seqs, loaded.max_length)
    config = {k: int(getattr(loaded.config, k)) for k in ("hidden_size", "intermediate_size", "num_hidden_layers")}
    del loaded
    timing = TimingConfig.quick() if quick else TimingConfig()
    overrides = {"warmup_iters": warmup, "min_iters": min_iters, "min_seconds": min_seconds}
    timing = dataclasses.replace(timing, **{k: v for k, v in overrides.items() if v is not None})
    if timing.min_iters < 1 or timing.min_seconds < 0 or timing.warmup_iters < 0:
        raise UsageError("--min-iters must be >= 1, --min-seconds and --warmup >= 0")
    plan = BenchPlan(source, selected, specs, cache, resolve_threads(threads), timing, baseline, config, floor, quick)
    plan.interleave = interleave
    paths: dict[str, Path] = {}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("starting", total=len(selected) * len(specs))

    def checkpoint(result: dict[str, Any]) -> None:
        if not paths:
            paths.update(result_paths(result, out))
        finish(result, baseline)
        write_result(result, paths["json"])

    def on_row(row: dict[str, Any]) -> None:
        progress.advance(task)
        progress.console.print(
            f"  {row['unit']:<24} {row['workload_label']:<16} p50 {row['latency_ms']['p50']:.2f} ms "
            f"({row['iterations']} it)",
            highlight=False,
        )

    def on_failure(item: dict[str, Any]) -> None:
        progress.advance(task, item.get("skipped", 0))
        progress.console.print(f"  [red]{item['unit']} failed:[/] {item['error']}", highlight=False)

    events = Events(
        on_unit=lambda unit, what: progress.update(task, description=f"{unit}: {what}"),
        on_row=on_row,
        on_failure=on_failure,
        on_checkpoint=checkpoint,
    )
    err.print(f"bench {source.name}: {len(selected)} unit(s) x {len(specs)} workload(s), {plan.threads} thread(s)")
    try:
        with progress:
            result = run_plan(plan, events)
    except KeyboardInterrupt:
        if paths:
            err.print(f"[yellow]interrupted[/]: finished rows kept in {paths['json']}")
        raise
    checkpoint(result)
    made = write_charts(result, paths["charts"]) if charts and result["results"] else []
    paths["markdown"].write_text(markdown(result, made))
    print_table(result, console, wide=wide)
    console.print(f"results: {paths['json']}  report: {paths['markdown']}", highlight=False)
    for chart in made:
        console.print(f"chart: {chart}", highlight=False)
    if not result["results"]:
        raise SiliconlabError("no unit produced a result")
