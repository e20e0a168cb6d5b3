"""The `siliconlab` command. This module only wires the command groups (one module each) onto the app.

Heavy libraries (torch, transformers, engines) are imported inside the commands that need them, so `--help`
and usage errors answer fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from siliconlab.cli import (
    batch,
    bench,
    cache,
    compare,
    convert,
    demo,
    evaluate,
    export,
    inventory,
    loadtest,
    monitor,
    serve,
    tasks,
    verify,
)
from siliconlab.cli.common import console
from siliconlab.cli.help import Command, Group
from siliconlab.version import __version__

app = typer.Typer(
    cls=Group,
    help="Run a transformer on the fastest compute unit of this machine: convert, prove parity, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


app.command(cls=Command)(inventory.units)
app.command(cls=Command)(inventory.models)
app.command(cls=Command)(convert.convert)
app.command(cls=Command)(bench.bench)
app.command(cls=Command)(compare.compare)
app.command(cls=Command)(verify.verify)
app.add_typer(cache.app, name="cache")
app.command(cls=Command)(tasks.classify)
app.command(cls=Command)(tasks.embed)
app.command(cls=Command)(tasks.chat)
app.command("eval", cls=Command)(evaluate.eval_command)
app.command("train-head", cls=Command)(evaluate.train_head)
app.command(cls=Command)(monitor.monitor)
app.command(cls=Command)(monitor.plot)
app.command(cls=Command)(serve.serve)
app.command(cls=Command)(batch.batch)
app.command("export-triton", cls=Command)(export.export_triton)
app.command(cls=Command)(loadtest.loadtest)
app.command(cls=Command)(demo.demo)
