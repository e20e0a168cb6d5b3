"""`siliconlab units` and `siliconlab models`: what this machine can run, and which models are built in."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from siliconlab.cli.common import console, handles_errors, print_wide


@handles_errors
def units(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Show every column, each reason on one line.")] = False,
) -> None:
    """List every compute unit siliconlab knows, whether it can run on this machine, and why not."""
    from siliconlab.cpu_features import detect
    from siliconlab.units import REGISTRY

    cpu = detect()
    rows = [unit().describe() for unit in REGISTRY.values()]
    if as_json:  # a list, as before; CPU units carry the instruction sets their availability was decided on
        print(json.dumps([row | ({"cpu": cpu.to_dict()} if row["device"] == "cpu" else {}) for row in rows], indent=2))
        return
    table = Table(title="Compute units", caption=f"CPU: {cpu.summary()}")
    columns = (
        ("unit", "engine", "device", "precision", "available", "why not")
        if wide
        else ("unit", "device", "precision", "available", "why not")
    )
    for column in columns:
        # Only the reason wraps (between words); the short columns stay whole.
        table.add_column(column, no_wrap=wide or column != "why not", ratio=1 if column == "why not" else None)
    for row in rows:
        if row["available"] and not row["timed"]:  # runs, but `bench all` leaves it out: say why
            available, reason = "[yellow]not timed[/]", row["timing_reason"]
        elif row["available"]:
            available, reason = "[green]yes[/]", ""
        elif row.get("convertible"):
            available, reason = "[yellow]converts[/]", row["reason"]
        else:
            available, reason = "[red]no[/]", row["reason"]
        if not wide:  # the headline of the reason; its details (versions, providers, hints) are a --wide matter
            reason = reason.split(" (")[0].split("; ")[0]
        cells = {**row, "available": available, "why not": reason}
        table.add_row(*(cells[column] for column in columns))
    print_wide(table, wide)
    if not wide:
        console.print("[dim]--wide: every column and the full reasons; --json: machine-readable[/]")


@handles_errors
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every cell on one line (the table may exceed 100 columns).")
    ] = False,
) -> None:
    """List the built-in models (size, params, source, purpose). Any local HF directory works too."""
    from siliconlab.models import BUILTIN, DEFAULT_MODEL
    from siliconlab.tasks.eval import latest_accuracy

    rows = []
    for name, factory in BUILTIN.items():
        source = factory()
        described = source.describe()
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL,
                **described,
                "source": source.source,
                "purpose": source.purpose,
                "architecture_only": source.architecture_only,
                "accuracy": latest_accuracy(name) if _evaluable(described["task"]) else None,
            }
        )
        if name == DEFAULT_MODEL:
            rows.append(_chat_row(described))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Models (also: any local Hugging Face model directory, or a hub id where online)")
    columns = ("name", "params", "size", "task", "accuracy here", "source", "purpose")  # --wide: no wrapping
    for column in columns:  # source and purpose share what the other columns leave, wrapped between words
        prose = column in ("source", "purpose")
        table.add_column(column, no_wrap=wide or not prose, ratio=1 if prose and not wide else None, overflow="fold")
    for row in rows:
        cells = {
            "name": row["name"] + (" (default)" if row["default"] else ""),
            "params": f"{row['params'] / 1e6:.1f}M",
            "size": f"{row['size_bytes'] / 2**20:.0f} MiB",
            "task": row["task"] if wide else row["task"].replace("classification", "classifier"),
            "accuracy here": _accuracy_cell(row, wide),
            "source": row["source"],
            "purpose": row["purpose"],
        }
        table.add_row(*(cells[column] for column in columns))
    print_wide(table, wide)


def _chat_row(minilm: dict[str, Any]) -> dict[str, Any]:
    """chat-retrieval is MiniLM plus a corpus of replies, not a model of its own: described from MiniLM's facts."""
    return {
        **minilm,
        "name": "chat-retrieval",
        "default": False,
        "task": "chat",
        "source": "MiniLM + the chatterbot-corpus package's English conversations",
        "purpose": "chatbot: replies with the answer of the most similar known prompt",
        "architecture_only": False,
        "accuracy": None,
    }


def _evaluable(task: str) -> bool:
    """Whether `siliconlab eval` measures models of this task (the registry's task of that name answers labels)."""
    from siliconlab.tasks.registry import tasks

    return any(t.name == task and t.evaluable for t in tasks())


def _accuracy_cell(row: dict[str, Any], wide: bool = True) -> str:
    if not _evaluable(row["task"]):
        return ""
    found = row.get("accuracy")
    if not found:
        return "not evaluated here" if wide else "not run here"
    if not wide:
        return f"{found['accuracy'] * 100:.1f} %"
    return f"{found['accuracy'] * 100:.1f} % ({found['texts']} texts, {str(found['created'])[:10]})"
