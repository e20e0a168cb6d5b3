"""Writing and printing bench results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from siliconlab.convert.manifest import write_json_atomic


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    stamp = result["created"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = Path(out_dir) / f"bench-{result['model'].replace('/', '--')}-{stamp}.json"
    write_json_atomic(path, result)
    return path


def print_table(result: dict[str, Any], console: Console) -> None:
    machine = result["machine"]
    title = (
        f"{result['model']} on {machine['cpu']} ({machine['cores_physical']} cores), "
        f"{result['settings']['threads']} threads"
    )
    table = Table(title=title)
    for column in ("unit", "shape", "p50 ms", "p90 ms", "seq/s", "speedup", "parity cos min"):
        table.add_column(column, justify="left" if column in ("unit", "shape") else "right", no_wrap=column == "unit")
    rows = sorted(result["results"], key=lambda r: (r["workload"], r["seq"], r["batch"], r["latency_ms"]["p50"]))
    for row in rows:
        speedup = f"{row['speedup']:.2f}x" if row["speedup"] else "n/a"
        parity = row.get("parity") or {}
        cos = f"{parity['cosine_min']:.5f}" if parity else ""
        shape = f"B{row['batch']} S{row['seq']}" + (" (text)" if row["workload"] == "text" else "")
        table.add_row(
            row["unit"],
            shape,
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p90']:.2f}",
            f"{row['throughput']['sequences_per_s']:.1f}",
            speedup,
            cos,
        )
    console.print(table)
    for failure in result["failures"]:
        console.print(f"[red]{failure['unit']}[/]: {failure['error']}", highlight=False)
