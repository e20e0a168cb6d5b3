"""The `siliconlab` command. This module only wires the command groups (one module each) onto the app.

Heavy libraries (torch, transformers, engines) are imported inside the commands that need them, so `--help`
and usage errors answer fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from siliconlab import __version__
from siliconlab.cli import bench, cache, compare, convert, evaluate, inventory, tasks, verify
from siliconlab.cli.common import console

app = typer.Typer(
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


app.command()(inventory.units)
app.command()(inventory.models)
app.command()(convert.convert)
app.command()(bench.bench)
app.command()(compare.compare)
app.command()(verify.verify)
app.add_typer(cache.app, name="cache")
app.command()(tasks.classify)
app.command()(tasks.embed)
app.command()(tasks.chat)
app.command("eval")(evaluate.eval_command)
app.command("train-head")(evaluate.train_head)
