"""The `siliconlab` command: units, models, convert, bench."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from siliconlab import __version__
from siliconlab.errors import SiliconlabError, UsageError

app = typer.Typer(
    help="Run a transformer on the fastest compute unit of this machine: convert, prove parity, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(width=None if Console().is_terminal else 200)  # pipes and CI logs get full-width tables
err = Console(stderr=True, soft_wrap=True)

DEFAULT_CACHE = Path(os.environ.get("SILICONLAB_CACHE", Path.home() / ".cache" / "siliconlab" / "artifacts"))


def _quiet_libraries() -> None:
    """Library progress bars and INFO chatter would bury our tables; our own warnings still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars
    import warnings

    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(transformers|torch|coremltools|nncf)\b.*")
    warnings.filterwarnings("ignore", message=r".*TracerWarning.*|Converting a tensor to a Python boolean.*")
    logger = logging.getLogger("siliconlab")
    if not logger.handlers:
        handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    for name in ("nncf", "onnxruntime", "transformers", "torch.onnx", "coremltools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SiliconlabError into one red line and its exit code; never a traceback for the user's mistakes."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _quiet_libraries()
        try:
            return command(*args, **kwargs)
        except SiliconlabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _int_list(value: str, option: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated positive integers, got '{value}'") from None
    if not numbers or any(n < 1 for n in numbers):
        raise UsageError(f"{option} takes comma-separated positive integers, got '{value}'")
    return numbers


def _version(value: bool) -> None:
    if value:
        console.print(f"siliconlab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """siliconlab: convert a model for every compute unit here, prove parity, benchmark, pick the winner."""


@app.command()
@handles_errors
def units(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List every compute unit siliconlab knows, whether it can run on this machine, and why not."""
    from siliconlab.units import REGISTRY

    rows = [unit().describe() for unit in REGISTRY.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Compute units")
    for column in ("unit", "engine", "device", "precision", "available"):
        table.add_column(column)
    for row in rows:
        status = "[green]yes[/]" if row["available"] else f"[red]no[/] — {row['reason']}"
        if not row["available"] and row.get("convertible"):
            status += " (converts here)"
        table.add_row(row["unit"], row["engine"], row["device"], row["precision"], status)
    console.print(table)


@app.command()
@handles_errors
def models(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the built-in models (size, params, source, purpose). Any local HF directory works too."""
    from siliconlab.models import BUILTIN, DEFAULT_MODEL

    rows = []
    for name, factory in BUILTIN.items():
        source = factory()
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL,
                **source.describe(),
                "source": source.source,
                "purpose": source.purpose,
                "architecture_only": source.architecture_only,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Models (also: any local Hugging Face model directory, or a hub id where online)")
    for column in ("name", "params", "size", "task", "source", "purpose"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(
            name,
            f"{row['params'] / 1e6:.1f}M",
            f"{row['size_bytes'] / 2**20:.0f} MiB",
            row["task"],
            row["source"],
            row["purpose"],
        )
    console.print(table)


def _threads(threads: int | None) -> int:
    from siliconlab.bench.machine import default_threads

    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    return threads or default_threads()


@app.command()
@handles_errors
def convert(
    model: Annotated[str, typer.Argument(help="minilm, bert-base, a local HF model directory, or a hub id.")],
    units: Annotated[str, typer.Option("--units", "-u", help="Comma-separated unit names, or 'all'.")] = "all",
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifacts go to OUT/<model>/<unit>/.")] = DEFAULT_CACHE,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if an up-to-date artifact exists.")] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for parity runs (default: physical cores).")] = None,
    ane_optimized: Annotated[
        bool | None,
        typer.Option(
            "--ane-optimized/--no-ane-optimized",
            help="CoreML units: convert the ANE-optimized BERT rewrite (default: on for coreml-ane*, off otherwise).",
        ),
    ] = None,
) -> None:
    """Convert MODEL for each unit and check parity against fp32 PyTorch; failing units are reported, others go on.

    Units that can be converted here but only run elsewhere (CoreML on Linux) are converted and checked by
    structure and by their converted PyTorch module's parity; their own parity shows as n/a with the reason.
    """
    from siliconlab.convert import convert_all
    from siliconlab.models import resolve
    from siliconlab.units import select_units

    selected = select_units(units)
    for unit in selected:
        unit.configure(ane_optimized=ane_optimized)
    source = resolve(model)
    if not selected:
        raise SiliconlabError("no compute unit is available on this machine (see `siliconlab units`)")
    table = Table(title=f"convert {source.name} -> {out}")
    for column in ("unit", "status", "seconds", "size", "pooled cos min", "max abs", "detail"):
        table.add_column(column, overflow="fold", no_wrap=column == "unit")

    def report(outcome: Any) -> None:
        manifest = outcome.manifest
        parity = manifest.get("parity") or {}
        colour = {"converted": "green", "cached": "green", "failed": "red", "unavailable": "yellow"}[outcome.status]
        status = f"[{colour}]{outcome.status}[/]"
        seconds = f"{manifest['conversion_seconds']:.1f}" if "conversion_seconds" in manifest else ""
        size = f"{manifest['artifact_bytes'] / 2**20:.1f} MiB" if "artifact_bytes" in manifest else ""
        measured = parity.get("passed") is not None
        cos = f"{parity['cosine_min']:.6f}" if measured else "n/a" if parity else ""
        max_abs = f"{parity['max_abs']:.2g}" if measured else ""
        detail = outcome.error or ("reused: inputs unchanged" if outcome.status == "cached" else "")
        if parity and not measured and not outcome.error:
            module = parity.get("converted_module")
            module_cos = f"; converted PyTorch module cos min {module['cosine_min']:.6f}" if module else ""
            detail = f"{detail + '; ' if detail else ''}{parity['reason']}: structure checked{module_cos}"
        table.add_row(outcome.unit, status, seconds, size, cos, max_abs, detail)
        suffix = f" — {outcome.error}" if outcome.error else ""
        err.print(f"  {outcome.unit}: {outcome.status}{suffix}", highlight=False)

    with err.status(f"converting {source.name} for {len(selected)} unit(s)…"):
        outcomes = convert_all(source, selected, out, _threads(threads), force=force, on_done=report)
    console.print(table)
    console.print(f"artifacts: {out / outcomes[0].artifact_dir.parent.name if outcomes[0].artifact_dir else out}")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SiliconlabError(f"{len(failed)} of {len(outcomes)} unit(s) failed: {', '.join(o.unit for o in failed)}")


@app.command()
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

    batches, seqs = _int_list(batch, "--batch"), _int_list(seq, "--seq")
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
    plan = BenchPlan(source, selected, specs, cache, _threads(threads), timing, baseline, config, floor, quick)
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
    print_table(result, console)
    console.print(f"results: {paths['json']}  report: {paths['markdown']}", highlight=False)
    for chart in made:
        console.print(f"chart: {chart}", highlight=False)
    if not result["results"]:
        raise SiliconlabError("no unit produced a result")


@app.command()
@handles_errors
def compare(
    before: Annotated[Path, typer.Argument(help="Earlier bench result (JSON).")],
    after: Annotated[Path, typer.Argument(help="Later bench result (JSON).")],
    threshold: Annotated[float, typer.Option(help="Regression if slower by more than this fraction.")] = 0.10,
) -> None:
    """Compare two bench results per unit and shape; exit 1 on a regression beyond --threshold and the spread."""
    from siliconlab.bench.compare import compare_results
    from siliconlab.bench.report import load_result

    if threshold < 0:
        raise UsageError(f"--threshold must be >= 0, got {threshold}")
    a, b = load_result(before), load_result(after)
    changes, missing = compare_results(a, b, threshold)
    if not changes:
        raise SiliconlabError("the two results share no (unit, workload, batch, seq) row to compare")
    if a["machine"].get("cpu") != b["machine"].get("cpu"):
        err.print(f"[yellow]note:[/] different machines ({a['machine'].get('cpu')} vs {b['machine'].get('cpu')})")
    table = Table(title=f"{before.name} -> {after.name} (threshold {threshold:.0%})")
    for column in ("unit", "shape", "before p50 ms", "after p50 ms", "after/before", "verdict"):
        table.add_column(column, no_wrap=True)
    for change in changes:
        if change.regression:
            verdict = "[red]REGRESSION[/]"
        elif change.beyond_spread:
            verdict = "[green]faster[/]" if change.ratio < 1 else "slower (within threshold)"
        else:
            verdict = "within spread"
        table.add_row(
            change.unit,
            change.shape,
            f"{change.before_ms:.2f}",
            f"{change.after_ms:.2f}",
            f"{change.ratio:.3f}",
            verdict,
        )
    console.print(table)
    for item in missing:
        console.print(f"[yellow]missing in {after.name}:[/] {item}", highlight=False)
    regressions = [c for c in changes if c.regression]
    if regressions:
        raise SiliconlabError(f"{len(regressions)} regression(s) beyond {threshold:.0%} and the measured spread")
