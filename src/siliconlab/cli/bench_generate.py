"""`siliconlab bench <generative model>`: the generation bench's table and result file (bench/generate.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from siliconlab.cli.common import console, err


def bench_generation(source: Any, units: str, out: Path, cache: Path, threads: int | None, quick: bool) -> None:
    from siliconlab.bench.generate import run_bench
    from siliconlab.bench.machine import default_threads
    from siliconlab.bench.report import result_paths, write_result
    from siliconlab.units.decoders import is_seq2seq, select_decoder_units

    chosen = select_decoder_units(units, is_seq2seq(source.config), timing=True)
    threads = threads or default_threads()
    err.print(f"generation bench of {source.name} on {', '.join(u.name for u in chosen)} ({threads} threads"
              f"{', quick' if quick else ''}); converting or reusing each unit first")  # fmt: skip

    def progress(row: dict[str, Any]) -> None:
        rate = f", {row['decode_tokens_per_s']:.1f} tokens/s" if "decode_tokens_per_s" in row else ""
        err.print(f"  {row['unit']}: {row['workload_label']}: TTFT p50 {row['ttft_ms']['p50']:.0f} ms{rate}")

    result = run_bench(source, chosen, cache, threads, quick, on_row=progress)
    paths = result_paths(result, out)
    write_result(result, paths["json"])
    console.print(generation_table(result))
    for failure in result["failures"]:
        err.print(f"[red]{failure['unit']} failed[/]: {failure['error']}", highlight=False)
    console.print(f"results: {paths['json']}", highlight=False)
    _remember(source, cache, result)


def _remember(source: Any, cache: Path, result: dict[str, Any]) -> None:
    """Keep this model's batch-1 decode ranking in the artifact store: `siliconlab.load(unit="best")` reads it."""
    from siliconlab.convert.pipeline import model_folder_name
    from siliconlab.tasks.best import write_record

    path = write_record(cache / model_folder_name(source), result)
    if path is not None:
        err.print(f"best-unit record for `siliconlab.load('{source.name}')`: {path}", highlight=False)


def generation_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['model']} — greedy generation, {result['settings']['threads']} threads")
    for column in ("unit", "workload", "TTFT p50 ms", "TTFT p90 ms", "decode tok/s", "peak MiB", "agreement"):
        table.add_column(column, justify="left" if column in ("unit", "workload") else "right")
    for row in result["results"]:
        parity = row.get("parity") or {}
        rate = row.get("decode_tokens_per_s")
        agreement = f"{parity['agreement']:.1%}" if "agreement" in parity else ""
        table.add_row(row["unit"], row["workload_label"], f"{row['ttft_ms']['p50']:.0f}",
                      f"{row['ttft_ms']['p90']:.0f}", f"{rate:.1f}" if rate else "",
                      f"{row['peak_rss_mb']:.0f}", agreement)  # fmt: skip
    return table
