"""`siliconlab units` and `siliconlab models`: what this machine can run, and which models are built in."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from siliconlab.cli.common import console, handles_errors


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
