"""`siliconlab convert`: build every unit's artifact and gate it on parity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siliconlab.cli.common import (
    cache_dir,
    console,
    err,
    handles_errors,
    output_dir,
    print_wide,
    resolve_threads,
    stages,
)
from siliconlab.errors import SiliconlabError

#: The table `convert` prints by default fits 100 columns; `--wide` adds timings and the max abs error.
COLUMNS = ("unit", "status", "size", "cos min", "detail")
WIDE_COLUMNS = ("unit", "status", "seconds", "size", "cos min", "max abs", "detail")
NUMERIC = ("seconds", "size", "cos min", "max abs")


@handles_errors
def convert(
    model: Annotated[str, typer.Argument(help="minilm, bert-base, a local HF model directory, or a hub id.")],
    units: Annotated[str, typer.Option("--units", "-u", help="Comma-separated unit names, or 'all'.")] = "all",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            "--cache",
            help="Artifacts go to OUT/<model>/<unit>/: the store every command reads unless told otherwise.",
            show_default="$SILICONLAB_CACHE or ~/.cache/siliconlab/artifacts",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if an up-to-date artifact exists.")] = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for parity runs.", show_default="physical cores")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Re-hash every file of a cached artifact before reuse, ignoring hashes remembered in .verified.",
        ),
    ] = False,
    ane_optimized: Annotated[
        bool | None,
        typer.Option(
            "--ane-optimized/--no-ane-optimized",
            help="CoreML units: convert the ANE-optimized BERT rewrite.",
            show_default="on for coreml-ane*, off otherwise",
        ),
    ] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column (the table may exceed 100 columns).")] = False,
) -> None:
    """Convert MODEL for each unit and check parity against fp32 PyTorch; failing units are reported, others go on.

    Units that can be converted here but only run elsewhere (CoreML on Linux) are converted and checked by
    structure and by their converted PyTorch module's parity; their own parity shows as n/a with the reason.
    """
    from siliconlab.models import generative_source, resolve
    from siliconlab.units import select_units

    out = output_dir(cache_dir(out))
    generative = generative_source(model)
    if generative is not None:
        _convert_decoders(generative, units, out, resolve_threads(threads), force)
        return
    selected = select_units(units)
    for unit in selected:
        unit.configure(ane_optimized=ane_optimized)
    source = resolve(model)
    from siliconlab.convert import convert_all  # torch and the engines: only once the input is known good

    if not selected:
        raise SiliconlabError("no compute unit is available on this machine (see `siliconlab units`)")
    table = Table(title=f"convert {source.name} -> {out}")
    columns = WIDE_COLUMNS if wide else COLUMNS
    for column in columns:
        # Only the detail wraps, between words; numbers and names stay whole.
        table.add_column(column, no_wrap=wide or column != "detail", justify="right" if column in NUMERIC else "left")

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
        detail = outcome.error or ("reused: inputs and files unchanged" if outcome.status == "cached" else "")
        if outcome.notice:
            detail = f"{detail + '; ' if detail else ''}{outcome.notice}"
        if parity and not measured and not outcome.error:
            module = parity.get("converted_module")
            module_cos = f"; converted PyTorch module cos min {module['cosine_min']:.6f}" if module else ""
            detail = f"{detail + '; ' if detail else ''}{parity['reason']}: structure checked{module_cos}"
        cells = {"unit": outcome.unit, "status": status, "seconds": seconds, "size": size}
        cells |= {"cos min": cos, "max abs": max_abs, "detail": detail}
        table.add_row(*(cells[column] for column in columns))
        suffix = f" — {outcome.error}" if outcome.error else ""
        err.print(f"  {outcome.unit}: {outcome.status}{suffix}", highlight=False)

    err.print(f"converting {source.name} for {len(selected)} unit(s) into {out}", highlight=False)
    with stages():
        outcomes = convert_all(
            source, selected, out, resolve_threads(threads), force=force, on_done=report, verify=verify
        )
    print_wide(table, wide)
    console.print(f"artifacts: {out / outcomes[0].artifact_dir.parent.name if outcomes[0].artifact_dir else out}")
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SiliconlabError(f"{len(failed)} of {len(outcomes)} unit(s) failed: {', '.join(o.unit for o in failed)}")


def _convert_decoders(source: Any, units: str, out: Path, threads: int, force: bool) -> None:
    """A generative model: its decoder units, each gated by teacher-forced generation parity (docs/generate.md)."""
    from siliconlab.convert.pipeline import Converter
    from siliconlab.units import registry

    converter = Converter(source, out, threads)
    failed = []
    for unit in registry.select(converter.kind, units):
        with stages():
            outcome = converter.convert_unit(unit, force=force)
        parity = outcome.manifest.get("parity") or {}
        if "agreement" not in parity and "converted_module" in parity:  # converted here, predicts elsewhere
            parity = {**parity["converted_module"], "prefix": "converted module (PyTorch): "}
        figures = ""
        if "agreement" in parity:
            figures = (
                f"{parity.get('prefix', '')}agreement {parity['agreement']:.1%}, logit cosine min "
                f"{parity['cosine_min']:.6f}, free run {parity['free_run_match']:.0%} identical"
            )
        console.print(f"  {unit.name}: {outcome.status} {figures} {outcome.error}".rstrip(), highlight=False)
        if not outcome.ok:
            failed.append(unit.name)
    console.print(f"artifacts: {converter.model_dir}", highlight=False)
    if failed:
        raise SiliconlabError(f"{len(failed)} unit(s) failed: {', '.join(failed)}")
