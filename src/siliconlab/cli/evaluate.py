"""`siliconlab eval` (accuracy per unit on held-out data) and `siliconlab train-head` (rebuild a task head)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from siliconlab.cli.common import CacheOption, cache_dir, console, err, handles_errors, output_dir, stages
from siliconlab.errors import SiliconlabError, UsageError


def _units(spec: str) -> list[str]:
    """'all': every unit that runs (and is worth timing) here; else the named ones, checked by name."""
    from siliconlab.units import select_units

    if spec.strip() == "all":
        return [u.name for u in select_units("all") if u.timing_availability().ok]
    return [u.name for u in select_units(spec)]


@handles_errors
def eval_command(
    model: Annotated[str, typer.Argument(help="sentiment, spam, or a local classifier directory.")],
    units: Annotated[str, typer.Option("--units", "-u", help="Comma-separated unit names, or 'all'.")] = "all",
    limit: Annotated[int, typer.Option(help="Texts from the held-out split (stratified), or of --data.")] = 1000,
    data: Annotated[Path | None, typer.Option(help="Your own labelled CSV (with a header) or JSONL.")] = None,
    text_field: Annotated[str, typer.Option(help="Text column of --data.")] = "text",
    label_field: Annotated[str, typer.Option(help="Label column of --data.")] = "label",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON result.")] = Path("results"),
    cache: CacheOption = None,
) -> None:
    """Accuracy, macro-F1, confusion matrix and ms per text for each unit.

    Each unit's accuracy delta against torch-cpu-fp32 is shown and flagged when more than 0.5 points below.
    """
    from siliconlab.data.tasks import TASKS
    from siliconlab.tasks.eval import EVAL_RECORD, builtin_data, evaluate, file_data

    if limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    store = cache_dir(cache)
    output_dir(out)
    if data is not None:
        dataset = file_data(data, text_field, label_field, limit)
    elif model in TASKS:
        dataset = builtin_data(model, limit)
    else:
        raise UsageError(f"model '{model}' has no built-in data: pass --data FILE")
    selected = _units(units)
    err.print(f"eval {model}: {len(dataset.texts)} texts on {len(selected)} unit(s) — {dataset.description}")

    def on_row(row: dict[str, Any]) -> None:
        gate = "  [red]fails its parity gate: measured here only, never served[/]" if row["gate"] == "failed" else ""
        err.print(
            f"  {row['unit']:<24} accuracy {row['accuracy']:.4f}  {row['ms_per_text']:.2f} ms/text{gate}",
            highlight=False,
        )

    with stages():
        result = evaluate(model, selected, dataset, cache=store, on_row=on_row)
    path = _write(result, out, model)
    if data is None:
        from siliconlab.convert.manifest import write_json_atomic

        write_json_atomic(store / model / EVAL_RECORD, result)
    _print(result)
    console.print(f"results: {path}", highlight=False)
    for failure in result["failures"]:
        err.print(f"[red]{failure['unit']} failed:[/] {failure['error']}", highlight=False)
    for row in result["results"]:
        if row.get("gate") == "failed":
            err.print(f"[red]{row['unit']} fails its parity gate[/] (so no command serves it): {row['gate_detail']}",
                      highlight=False)  # fmt: skip
    if not result["results"]:
        raise SiliconlabError("no unit produced a result")
    if result["failures"] or any(row.get("gate") == "failed" for row in result["results"]):
        raise typer.Exit(1)


def _write(result: dict[str, Any], out: Path, model: str) -> Path:
    from siliconlab.convert.manifest import write_json_atomic

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"eval-{Path(model).name}-{stamp}.json"
    write_json_atomic(path, result)
    return path


def _print(result: dict[str, Any]) -> None:
    labels = result["results"][0]["confusion"]["labels"] if result["results"] else []
    minority = labels[-1] if labels else ""
    table = Table(title=f"eval {result['model']} — {result['data']}")
    for column in ("unit", "accuracy", "Δ vs fp32", "macro-F1", f"F1 {minority}", "confusion", "ms/text"):
        table.add_column(column, overflow="fold", no_wrap=column in ("unit", "accuracy", "ms/text"))
    for row in result["results"]:
        delta = row["accuracy_delta_points"]
        shown = "ref" if row["unit"] == result["reference_unit"] else f"{delta:+.2f} pt" if delta is not None else "n/a"
        if row["flagged"]:
            shown = f"[red]{shown} FLAG[/]"
        name = row["unit"] if row.get("gate") != "failed" else f"{row['unit']} [red](fails gate)[/]"
        matrix = " / ".join(" ".join(str(v) for v in line) for line in row["confusion"]["matrix"])
        table.add_row(name, f"{row['accuracy'] * 100:.2f} %", shown, f"{row['macro_f1']:.4f}",
                      f"{row['per_class'][minority]['f1']:.4f}", matrix, f"{row['ms_per_text']:.2f}")  # fmt: skip
    console.print(table)
    console.print(f"confusion rows = truth, columns = predicted, in label order: {', '.join(labels)}")
    if result["results"] and result["results"][0].get("truncated"):
        first = result["results"][0]
        console.print(f"{first['truncated']} of {first['texts']} texts were longer than {first['max_tokens']} tokens "
                      "and were truncated (as every unit sees them)")  # fmt: skip


@handles_errors
def train_head(
    task: Annotated[str, typer.Argument(help="sentiment or spam.")],
    rows: Annotated[int | None, typer.Option(help="Training rows (stratified by content hash).")] = None,
    out: Annotated[
        Path,
        typer.Option(help="Folder for <task>.safetensors/.json (the package's committed head is never the default)."),
    ] = Path("heads"),
    unit: Annotated[str | None, typer.Option(help="fp32 unit that embeds the training texts.")] = None,
) -> None:
    """Rebuild a task model's linear head from the packaged data: fixed seed, fixed split, recorded hashes.

    Writes into --out (./heads by default) and compares the result with the head the package ships."""
    from siliconlab.tasks.train import compare_with_committed
    from siliconlab.tasks.train import train_head as train

    output_dir(out)
    record = train(task, out, rows=rows, unit=unit)
    summary = {k: record[k] for k in ("task", "train_rows", "l2", "train_accuracy", "embedding_unit", "embed_seconds")}
    console.print(json.dumps(summary, indent=2))
    console.print(f"head: {out / (task + '.safetensors')}", highlight=False)
    console.print(compare_with_committed(task, out), highlight=False)
