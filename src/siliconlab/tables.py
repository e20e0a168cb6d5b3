"""Printing rich tables: at the console's width by default, or whole (`--wide`) even past it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def print_table(console: Console, table: Table, wide: bool) -> None:
    """Print `table`; with `wide`, at its own natural width so no column is cut (logs and pipes scroll)."""
    if not wide:
        console.print(table)
        return
    natural = console.measure(table, options=console.options.update(width=10_000)).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width
