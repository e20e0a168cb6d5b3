"""`siliconlab cache ls|prune`: what the artifact cache holds, and removing what is no longer wanted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from siliconlab.cli.common import DEFAULT_CACHE, console, handles_errors

app = typer.Typer(help="List or prune converted artifacts.", no_args_is_help=True, add_completion=False)

CacheOption = Annotated[Path, typer.Option("--cache", help="The artifact cache (convert's --out).")]


@app.command("ls")
@handles_errors
def ls(cache: CacheOption = DEFAULT_CACHE) -> None:
    """List every converted artifact: model, unit, size on disk, last use (conversion, reuse or load)."""
    from siliconlab.convert.integrity import human_bytes
    from siliconlab.store import list_cache

    entries = list_cache(cache)
    if not entries:
        console.print(f"no artifacts in {cache}")
        return
    table = Table(title=f"artifacts in {cache}")
    for column in ("model", "unit", "size", "last used", "state"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        used = datetime.fromtimestamp(entry.last_used).strftime("%Y-%m-%d %H:%M")
        state = "ok" if entry.complete else "[yellow]incomplete (no manifest)[/]"
        table.add_row(entry.model, entry.unit, human_bytes(entry.bytes), f"{used} ({entry.age_days:.0f} d ago)", state)
    console.print(table)
    console.print(f"{len(entries)} artifact(s), {human_bytes(sum(e.bytes for e in entries))}")


@app.command("prune")
@handles_errors
def prune(
    cache: CacheOption = DEFAULT_CACHE,
    older_than: Annotated[float | None, typer.Option("--older-than", help="Not used for more than DAYS.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's artifacts.")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit's artifacts.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Everything (the other filters still narrow it).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
) -> None:
    """Remove artifacts matching every filter given (at least one filter, or --all)."""
    from siliconlab.convert.integrity import human_bytes
    from siliconlab.store import list_cache, select_for_prune
    from siliconlab.store import prune as prune_entries

    chosen = select_for_prune(list_cache(cache), older_than, model, unit, everything)
    for entry in chosen:
        console.print(
            f"{'would remove' if dry_run else 'removing'} {entry.model}/{entry.unit} ({human_bytes(entry.bytes)})"
        )
    freed = prune_entries(cache, chosen, dry_run=dry_run)
    verb = "would free" if dry_run else "freed"
    console.print(f"{len(chosen)} artifact(s), {verb} {human_bytes(freed)}")
