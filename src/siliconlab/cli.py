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
console = Console()
err = Console(stderr=True, soft_wrap=True)

DEFAULT_CACHE = Path(os.environ.get("SILICONLAB_CACHE", Path.home() / ".cache" / "siliconlab" / "artifacts"))


def _quiet_libraries() -> None:
    """Library progress bars and INFO chatter would bury our tables; our own warnings still show."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logger = logging.getLogger("siliconlab")
    if not logger.handlers:
        handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    for name in ("nncf", "onnxruntime", "transformers", "torch.onnx"):
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
) -> None:
    """Convert MODEL for each unit and check parity against fp32 PyTorch; failing units are reported, others go on."""
    from siliconlab.convert import convert_all
    from siliconlab.models import resolve
    from siliconlab.units import select_units

    selected = select_units(units)
    source = resolve(model)
    if not selected:
        raise SiliconlabError("no compute unit is available on this machine (see `siliconlab units`)")
    table = Table(title=f"convert {source.name} -> {out}")
    for column in ("unit", "status", "seconds", "size", "pooled cos min", "max abs", "detail"):
        table.add_column(column, overflow="fold")

    def report(outcome: Any) -> None:
        manifest = outcome.manifest
        parity = manifest.get("parity") or {}
        colour = {"converted": "green", "cached": "green", "failed": "red", "unavailable": "yellow"}[outcome.status]
        status = f"[{colour}]{outcome.status}[/]"
        seconds = f"{manifest['conversion_seconds']:.1f}" if "conversion_seconds" in manifest else ""
        size = f"{manifest['artifact_bytes'] / 2**20:.1f} MiB" if "artifact_bytes" in manifest else ""
        cos = f"{parity['cosine_min']:.6f}" if parity else ""
        max_abs = f"{parity['max_abs']:.2g}" if parity else ""
        detail = outcome.error or str(outcome.artifact_dir or "")
        table.add_row(outcome.unit, status, seconds, size, cos, max_abs, detail)
        suffix = f" — {outcome.error}" if outcome.error else ""
        err.print(f"  {outcome.unit}: {outcome.status}{suffix}", highlight=False)

    with err.status(f"converting {source.name} for {len(selected)} unit(s)…"):
        outcomes = convert_all(source, selected, out, _threads(threads), force=force, on_done=report)
    console.print(table)
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
    batch: Annotated[str, typer.Option(help="Batch size(s), comma-separated, e.g. 1,8.")] = "1",
    seq: Annotated[str, typer.Option(help="Sequence length(s) in tokens, comma-separated, e.g. 16,128.")] = "128",
    text: Annotated[str | None, typer.Option(help="Time this real text at its natural length (not --seq).")] = None,
    baseline: Annotated[
        str, typer.Option(help="Unit that speedups are measured against, same run.")
    ] = "torch-cpu-fp32",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON result file.")] = Path("results"),
    cache: Annotated[Path, typer.Option(help="Artifact cache (converted models are reused).")] = DEFAULT_CACHE,
    threads: Annotated[int | None, typer.Option(help="CPU threads per unit (default: physical cores).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations: a fast look, not a result to quote.")] = (
        False
    ),
) -> None:
    """Time MODEL on each available unit and print p50/p90 and speedup vs the baseline unit from the same run."""
    from siliconlab.bench.report import print_table, write_result
    from siliconlab.bench.runner import run_bench
    from siliconlab.bench.timing import TimingConfig
    from siliconlab.models import resolve
    from siliconlab.units import get_unit, select_units

    batches, seqs = _int_list(batch, "--batch"), _int_list(seq, "--seq")
    selected = select_units(units)
    base_unit = get_unit(baseline)
    if base_unit.availability().ok and base_unit.name not in {u.name for u in selected}:
        selected.insert(0, base_unit)
    source = resolve(model)
    thread_count = _threads(threads)
    timing = TimingConfig.quick() if quick else TimingConfig()

    def progress(row: dict[str, Any]) -> None:
        err.print(
            f"  {row['unit']:<24} B{row['batch']} S{row['seq']}: p50 {row['latency_ms']['p50']:.2f} ms "
            f"({row['iterations']} iterations)",
            highlight=False,
        )

    def failure(item: dict[str, str]) -> None:
        err.print(f"  [red]{item['unit']} failed:[/] {item['error']}", highlight=False)

    err.print(f"bench {source.name} on {len(selected)} unit(s), {thread_count} thread(s)", highlight=False)
    result = run_bench(
        source,
        selected,
        batches,
        seqs,
        cache,
        thread_count,
        timing,
        baseline,
        text=text,
        on_row=progress,
        on_failure=failure,
    )
    path = write_result(result, out)
    print_table(result, console)
    console.print(f"results: {path}", highlight=False)
    if not result["results"]:
        raise SiliconlabError("no unit produced a result")
