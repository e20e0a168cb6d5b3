"""`siliconlab bench`: parse the options, hand them to bench/, print progress and the table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from siliconlab.cli.common import DEFAULT_CACHE, console, err, handles_errors, int_list, output_dir
from siliconlab.errors import SiliconlabError

if TYPE_CHECKING:
    from siliconlab.bench.plan import BenchPlan


@handles_errors
def bench(
    model: Annotated[
        str,
        typer.Argument(
            help="minilm (default), bert-base, smollm2-chat, gpt2, t5-small, a local HF directory or hub id."
        ),
    ] = "minilm",
    units: Annotated[str, typer.Option("--units", "-u", help="Comma-separated unit names, or 'all'.")] = "all",
    batch: Annotated[
        str | None,
        typer.Option(help="Batch size(s), comma-separated, e.g. 1,8,32 (default 1; generation: decode 1,8)."),
    ] = None,
    seq: Annotated[
        str | None,
        typer.Option(
            help="Sequence length(s) in tokens, e.g. 16,128,384 (default 128; generation: TTFT prompts "
            "32,256,1024 within the context)."
        ),  # fmt: skip
    ] = None,
    workload: Annotated[
        str | None,
        typer.Option(help="fixed (default): the --batch x --seq grid; text: a stream of real sentences (encoders)."),
    ] = None,
    text: Annotated[str | None, typer.Option(help="Time this one real text at its natural length.")] = None,
    texts: Annotated[
        int | None, typer.Option(help="Number of real sentences in the text workload (default 200).")
    ] = None,
    budget_ms: Annotated[
        float | None, typer.Option(help="Throughput: the largest batch whose p90 stays within this budget.")
    ] = None,
    baseline: Annotated[
        str, typer.Option(help="Unit that speedups are measured against, same run.")
    ] = "torch-cpu-fp32",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON, Markdown and PNG results.")] = Path(
        "results"
    ),
    cache: Annotated[
        Path,
        typer.Option("--artifacts", "--cache", help="The artifact store: what `convert --out DIR` wrote is reused."),
    ] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="CPU threads per unit (default: physical cores).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations: a fast look, not a result to quote.")] = (
        False
    ),
    warmup: Annotated[int | None, typer.Option(help="Warm-up iterations (also at least warmup-seconds).")] = None,
    min_iters: Annotated[int | None, typer.Option(help="Measure at least this many iterations...")] = None,
    min_seconds: Annotated[float | None, typer.Option(help="...and for at least this many seconds.")] = None,
    floor: Annotated[
        bool | None, typer.Option(help="Measure the machine's GEMM floor for % of floor (default: on, for encoders).")
    ] = None,
    charts: Annotated[bool, typer.Option(help="Write PNG charts next to the results.")] = True,
    interleave: Annotated[
        bool, typer.Option(help="Time the units in alternating short bursts (ratios hold on a noisy machine).")
    ] = True,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column of the results table.")] = False,
    omp_wait_policy: Annotated[
        str,
        typer.Option(help="OpenMP wait policy of the unit processes: passive, active, or default (leave it alone)."),
    ] = "default",
    monitor: Annotated[
        bool, typer.Option("--monitor", help="Record what the hardware did per unit: timelines, chart, flags.")
    ] = False,
) -> None:
    """Time MODEL on each available unit, each in its own process.

    Reports p50/p90/p99 with a confidence interval and the speedup against the baseline timed in the same run.

    Also reports the % of the machine's measured GEMM floor, and the energy where a counter exists.

    Units are timed interleaved (rounds of short bursts) unless --no-interleave.

    A generative model (smollm2-chat, gpt2, t5-small, a causal-LM folder) runs through the same loop: time to
    first token at each --seq prompt length and decode tokens/s at each --batch; options that have no meaning
    for generation (--text, --texts, --budget-ms, --workload text, --floor) are refused with the reason.
    """
    from siliconlab.bench.plan import BenchOptions, build_plan

    output_dir(out)
    given = dict(locals())  # the options, by the names BenchOptions shares with this command's parameters
    shared = {f.name for f in dataclasses.fields(BenchOptions)} - {"cache_dir", "batches", "seqs"}
    batches = tuple(int_list(batch, "--batch")) if batch is not None else None
    seqs = tuple(int_list(seq, "--seq")) if seq is not None else None
    options = BenchOptions(cache_dir=cache, batches=batches, seqs=seqs, **{name: given[name] for name in shared})
    plan = build_plan(options)
    for name, reason in plan.skipped.items():
        err.print(f"  skipping {name}: {reason} (name it in --units to time it)")
    units_n, workloads_n = len(plan.units), len(plan.workloads)
    err.print(f"bench {plan.source.name}: {units_n} unit(s) x {workloads_n} workload(s), {plan.threads} thread(s)")
    result, paths = _run_with_progress(plan, out)
    _write_and_print(result, paths, charts, wide)
    _remember(plan, result)
    if units.strip() != "all":  # every unit the user named must have produced a row
        produced = {row["unit"] for row in result["results"]}
        missing = [u.name for u in plan.units if u.name not in produced]
        if missing:
            raise SiliconlabError(f"no result for the unit(s) you named: {', '.join(missing)}")


def _run_with_progress(plan: BenchPlan, out: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Run the plan under a progress bar; every finished row is saved at once (Ctrl-C keeps it)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from siliconlab.bench.report import result_paths, write_result
    from siliconlab.bench.results import finish
    from siliconlab.bench.runner import Events, run_plan

    paths: dict[str, Path] = {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    progress = Progress(*columns, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err,
                        transient=True)  # fmt: skip
    task = progress.add_task("starting", total=len(plan.units) * len(plan.workloads))

    def checkpoint(result: dict[str, Any]) -> None:
        if not paths:
            paths.update(result_paths(result, out))
        finish(result, plan.baseline)
        write_result(result, paths["json"])

    def on_row(row: dict[str, Any]) -> None:
        progress.advance(task)
        p50, iterations = row["latency_ms"]["p50"], row["iterations"]
        line = f"  {row['unit']:<24} {row['workload_label']:<16} p50 {p50:.2f} ms ({iterations} it)"
        if "ttft_ms" in row:  # generation: what a chat user feels
            rate = f", {row['decode_tokens_per_s']:.1f} tokens/s" if "decode_tokens_per_s" in row else ""
            line = f"  {row['unit']:<24} {row['workload_label']:<16} TTFT p50 {row['ttft_ms']['p50']:.0f} ms{rate}"
        progress.console.print(line, highlight=False)

    def on_failure(item: dict[str, Any]) -> None:
        progress.advance(task, item.get("skipped", 0))
        progress.console.print(f"  [red]{item['unit']} failed:[/] {item['error']}", highlight=False)

    def on_unit(unit: str, what: str) -> None:
        progress.update(task, description=f"{unit}: {what}")

    events = Events(on_unit=on_unit, on_row=on_row, on_failure=on_failure, on_checkpoint=checkpoint)
    try:
        with progress:
            result = run_plan(plan, events)
    except KeyboardInterrupt:
        if paths:
            err.print(f"[yellow]interrupted[/]: finished rows kept in {paths['json']}")
        raise
    checkpoint(result)
    return result, paths


def _write_and_print(result: dict[str, Any], paths: dict[str, Path], charts: bool, wide: bool) -> None:
    from siliconlab.bench.charts import write_charts
    from siliconlab.bench.report import markdown, print_table

    made = write_charts(result, paths["charts"]) if charts and result["results"] else []
    paths["markdown"].write_text(markdown(result, made))
    print_table(result, console, wide=wide)
    console.print(f"results: {paths['json']}  report: {paths['markdown']}", highlight=False)
    for chart in made:
        console.print(f"chart: {chart}", highlight=False)
    if not result["results"]:
        raise SiliconlabError("no unit produced a result")


def _remember(plan: BenchPlan, result: dict[str, Any]) -> None:
    """Keep this model's batch-1 real-text ranking in the artifact store: `siliconlab.load(unit="best")` reads it."""
    from siliconlab.convert.pipeline import model_folder_name
    from siliconlab.tasks.best import write_record

    path = write_record(plan.cache_dir / model_folder_name(plan.source), result)
    if path is not None:
        err.print(f"best-unit record for `siliconlab.load('{plan.source.name}')`: {path}", highlight=False)
