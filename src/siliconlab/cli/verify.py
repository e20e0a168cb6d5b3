"""`siliconlab verify`: check a shipped artifact folder (files vs manifest, parity where the unit runs here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from siliconlab.cli.common import console, handles_errors, resolve_threads
from siliconlab.errors import SiliconlabError


@handles_errors
def verify(
    folder: Annotated[Path, typer.Argument(help="A unit folder, a model folder, or a whole convert output root.")],
    parity: Annotated[
        bool, typer.Option("--parity/--no-parity", help="Re-run parity where the unit runs here.")
    ] = True,
    threads: Annotated[int | None, typer.Option(help="CPU threads for parity runs (default: physical cores).")] = None,
) -> None:
    """Check every artifact under FOLDER: each file's size and sha256 against its manifest, then parity against
    fp32 PyTorch again where the unit runs here. Exit 0: all good; 1: a defect; 2: FOLDER holds no artifact."""
    from siliconlab.convert.verify import find_unit_folders, verify_folder

    folders = find_unit_folders(folder)
    count = resolve_threads(threads)
    table = Table(title=f"verify {folder}")
    for column in ("artifact", "unit", "files", "parity", "verdict"):
        table.add_column(column, overflow="fold")
    results = []
    for unit_folder in folders:
        result = verify_folder(unit_folder, count, parity=parity)
        results.append(result)
        verdict = "[green]ok[/]" if result.ok else "[red]defect[/]"
        table.add_row(str(unit_folder), result.unit, result.files, result.parity, verdict)
    console.print(table)
    bad = [r for r in results if not r.ok]
    for result in bad:  # the reasons once more, unwrapped, for logs and for grep
        console.print(f"defect: {result.unit}: {result.files}", highlight=False, soft_wrap=True)
    if bad:
        raise SiliconlabError(
            f"{len(bad)} of {len(results)} artifact(s) have defects: {', '.join(r.unit for r in bad)}"
        )
    console.print(f"{len(results)} artifact(s) verified")
