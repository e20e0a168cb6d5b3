"""`siliconlab compare`: two bench results, per unit and shape, beyond the noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from siliconlab.cli.common import console, err, handles_errors
from siliconlab.errors import SiliconlabError, UsageError


@handles_errors
def compare(
    before: Annotated[Path, typer.Argument(help="Earlier bench result (JSON).")],
    after: Annotated[Path, typer.Argument(help="Later bench result (JSON).")],
    threshold: Annotated[float, typer.Option(help="Regression if slower by more than this fraction.")] = 0.10,
    force: Annotated[
        bool, typer.Option("--force", help="Compare results of different models, machines or thread counts.")
    ] = False,
) -> None:
    """Compare two bench results per unit and shape, beyond the measured spread.

    Exit 0: no regression. Exit 1: a regression beyond --threshold and the spread. Exit 2: bad input.
    """
    from siliconlab.bench.compare import compare_results, incomparable
    from siliconlab.bench.report import load_result

    if threshold < 0:
        raise UsageError(f"--threshold must be >= 0, got {threshold}")
    a, b = load_result(before), load_result(after)
    reasons = incomparable(a, b)
    if reasons and not force:
        raise UsageError(f"not comparable: {'; '.join(reasons)} (--force compares anyway)")
    for reason in reasons:
        err.print(f"[yellow]note:[/] {reason}", highlight=False)
    changes, missing = compare_results(a, b, threshold)
    if not changes:
        raise UsageError("the two results share no (unit, workload, batch, seq) row to compare")
    table = Table(title=f"{before.name} -> {after.name} (threshold {threshold:.0%})")
    for column in ("unit", "shape", "before p50 ms", "after p50 ms", "after/before", "verdict"):
        # Shape labels and verdicts wrap between words so the table fits 100 columns; numbers never wrap.
        numeric = column.startswith(("before", "after"))
        table.add_column(column, no_wrap=column not in ("shape", "verdict"), justify="right" if numeric else "left")
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
