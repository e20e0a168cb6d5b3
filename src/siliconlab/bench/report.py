"""Bench results: the JSON file, the terminal table and the Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from siliconlab.bench.contention import unstable
from siliconlab.convert.manifest import write_json_atomic
from siliconlab.errors import UsageError
from siliconlab.tables import print_table as print_whole

COLUMNS = (
    "unit",
    "workload",
    "p50 ms",
    "95% CI p50",
    "p90 ms",
    "p99 ms",
    "seq/s",
    "GFLOP/s",
    "runs in",
    "% floor",
    "speedup",
    "J/seq",
    "peak MB",
    "GPU MB",
    "parity",
)


#: A generation result's columns: time to first token, decode rate, and the same speedup / memory / parity cells.
GENERATION_COLUMNS = ("unit", "workload", "TTFT p50 ms", "TTFT p90 ms", "decode tok/s", "step p50 ms", "speedup",
                      "runs", "peak MB", "GPU MB", "agreement")  # fmt: skip
NARROW_GENERATION_COLUMNS = ("unit", "workload", "TTFT p50 ms", "TTFT p90 ms", "decode tok/s", "speedup", "agreement")


def result_paths(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    stamp = result["created"].replace(":", "").replace("-", "").replace("+0000", "Z")
    stem = Path(out_dir) / f"bench-{result['model'].replace('/', '--')}-{stamp}"
    return {"json": stem.with_suffix(".json"), "markdown": stem.with_suffix(".md"), "charts": stem}


def write_result(result: dict[str, Any], path: Path) -> Path:
    write_json_atomic(path, result)
    return path


def load_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"no such result file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a result file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("siliconlab.bench/"):
        raise UsageError(f"{path} is not a siliconlab bench result (no siliconlab.bench schema)")
    return data


def speedup_text(row: dict[str, Any]) -> str:
    """'6.04x', and with interleaved rounds the range of the round-by-round ratios: '6.04x (5.88–6.21)'."""
    if not row.get("speedup"):
        return "n/a"
    spread = row.get("speedup_rounds") or {}
    if unstable(row):  # never a headline: the ratio moved by more than UNSTABLE_RANGE between rounds
        return f"unstable ({spread['min']:.2f}–{spread['max']:.2f})"
    if spread and row["unit"] and abs(spread["max"] - spread["min"]) > 0.005:
        return f"{row['speedup']:.2f}x ({spread['min']:.2f}–{spread['max']:.2f})"
    return f"{row['speedup']:.2f}x"


def _cells(row: dict[str, Any]) -> list[str]:
    lat = row["latency_ms"]
    ci = f"{lat['p50_ci_low']:.2f}–{lat['p50_ci_high']:.2f}" if "p50_ci_low" in lat else ""
    energy = (row.get("energy") or {}).get("joules_per_sequence")
    parity = row.get("parity") or {}
    cos = parity.get("cosine_min")
    gpu = row.get("gpu_memory_mb")
    contended = (row.get("contention") or {}).get("flagged")
    return [
        row["unit"] + (" !" if contended else ""),  # "!": measured under contention (see the note under the table)
        row.get("workload_label") or f"B{row['batch']} S{row['seq']}",
        f"{lat['p50']:.2f}",
        ci,
        f"{lat['p90']:.2f}",
        f"{lat['p99']:.2f}",
        f"{row['throughput']['sequences_per_s']:.1f}",
        f"{row['gflops_per_s']:.1f}" if row.get("gflops_per_s") else "",
        str(row.get("executed_precision") or row.get("compute_precision") or ""),  # read back from the engine
        f"{row['pct_of_floor']:.0f}% of {row.get('floor_precision', '')}".strip()
        if row.get("pct_of_floor") is not None
        else "n/a",
        speedup_text(row),
        f"{energy:.3g}" if energy is not None else "n/a",
        f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else "",
        f"{gpu['torch_peak']:.0f}" if gpu and gpu.get("torch_peak") else "",
        f"{cos:.5f}" if cos is not None else "",
    ]


def _generation_cells(row: dict[str, Any]) -> list[str]:
    rate, step = row.get("decode_tokens_per_s"), row.get("decode_step_ms") or {}
    parity, gpu = row.get("parity") or {}, row.get("gpu_memory_mb")
    contended = (row.get("contention") or {}).get("flagged")
    return [
        row["unit"] + (" !" if contended else ""),
        row.get("workload_label") or f"gen b{row['batch']} p{row['seq']}",
        f"{row['ttft_ms']['p50']:.1f}",
        f"{row['ttft_ms']['p90']:.1f}",
        f"{rate:.1f}" if rate else "",
        f"{step['p50']:.2f}" if step else "",
        speedup_text(row),
        str(row.get("runs", row["ttft_ms"].get("n", ""))),
        f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else "",
        f"{gpu['torch_peak']:.0f}" if gpu and gpu.get("torch_peak") else "",
        f"{parity['agreement']:.1%}" if "agreement" in parity else "",
    ]


def is_generation(result: dict[str, Any]) -> bool:
    return any(row.get("workload") == "generation" for row in result["results"])


def layout(result: dict[str, Any], wide: bool) -> tuple[tuple[str, ...], tuple[str, ...], Any]:
    """(columns shown, all columns, row -> cells of all columns): encoder and generation results differ."""
    if is_generation(result):
        return (GENERATION_COLUMNS if wide else NARROW_GENERATION_COLUMNS), GENERATION_COLUMNS, _generation_cells
    return (COLUMNS if wide else NARROW_COLUMNS), COLUMNS, _cells


def sorted_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    order = {"fixed": 0, "text": 1, "budget": 2, "generation": 3}

    def key(r: dict[str, Any]) -> tuple:
        shape: tuple
        if r["workload"] == "generation":  # TTFT rows by prompt length, then decode rows by batch
            shape = (r.get("new_tokens", 1) > 1, r["batch"], r["seq"])
        else:
            shape = (r["seq"], r["batch"]) if r["workload"] == "fixed" else (r["batch"], 0)
        return (order.get(r["workload"], 9), *shape, r["latency_ms"]["p50"])

    return sorted(result["results"], key=key)


def device_names(result: dict[str, Any]) -> str:
    """What ran the rows: the GPU's name for CUDA rows, the CPU's for CPU rows (both when mixed)."""
    machine = result.get("machine", {})
    devices = {row.get("device", "cpu") for row in result["results"]}
    names = []
    if devices & {"cuda", "gpu"} and machine.get("gpus"):
        names.append(", ".join(gpu["name"] for gpu in machine["gpus"]))
    if devices - {"cuda", "gpu"} or not names:
        names.append(str(machine.get("cpu", "unknown CPU")))
    return " + ".join(names)


def _energy_reasons(result: dict[str, Any]) -> list[str]:
    """Why energy is n/a, once per reason, over every row."""
    return sorted({reason for r in result["results"] if (reason := (r.get("energy") or {}).get("reason"))})


def title_of(result: dict[str, Any]) -> str:
    machine = result["machine"]
    return (
        f"{result['model']} on {device_names(result)} ({machine['cores_physical']} CPU cores), "
        f"{result['settings']['threads']} threads, baseline {result['settings']['baseline']}"
    )


def contention_notes(result: dict[str, Any]) -> list[str]:
    """One line per workload measured under contention (rows marked '!' in the table), and the load before."""
    notes, seen = [], set()
    for row in result["results"]:
        window = row.get("contention") or {}
        label = row.get("workload_label")
        if window.get("flagged") and label not in seen:
            seen.add(label)
            notes.append(f"! {label} measured under contention: {'; '.join(window['reasons'])} — rerun when quiet")
    from siliconlab.bench.timeline import monitor_notes

    notes += monitor_notes(result)  # bench --monitor: rows flagged by their own hardware timeline
    before = (result.get("machine_load") or {}).get("before") or {}
    if before.get("flagged"):
        notes.append(f"the machine was busy before timing started: {'; '.join(before['reasons'])}")
    return notes


#: The columns `bench` prints by default: they fit a 100-column terminal. `--wide` prints all of COLUMNS.
NARROW_COLUMNS = ("unit", "workload", "p50 ms", "p90 ms", "seq/s", "% floor", "speedup", "parity")


def print_table(result: dict[str, Any], console: Console, wide: bool = False) -> None:
    """The results table; by default the columns that matter most, each value whole (never cut to '…')."""
    columns, every, cells_of = layout(result, wide)
    table = Table(title=title_of(result))
    for column in columns:
        # Only the workload label may wrap (at its spaces: "budget 12.5 ms" / "S128"); numbers and names never.
        left = column in ("unit", "workload")
        table.add_column(column, justify="left" if left else "right", no_wrap=wide or column != "workload")
    for row in sorted_rows(result):
        cells = dict(zip(every, cells_of(row)))
        if not wide:  # the round-by-round range of the speedup is a --wide detail
            cells["speedup"] = cells["speedup"].split(" (")[0]
        table.add_row(*(cells[column] for column in columns))
    print_whole(console, table, wide)
    for note in contention_notes(result):
        console.print(f"[yellow]{note}[/]", highlight=False)
    for failure in result["failures"]:
        console.print(f"[red]{failure['unit']} failed[/]: {failure['error']}", highlight=False)
    for reason in _energy_reasons(result):
        console.print(f"energy n/a: {reason}", highlight=False)


def markdown(result: dict[str, Any], charts: list[Path]) -> str:
    machine = result["machine"]
    lines = [
        f"# siliconlab bench: {result['model']}",
        "",
        f"- machine: {machine['cpu']}, {machine['cores_physical']} physical / {machine['cores_logical']} logical cores,"
        f" {machine['ram_gb']} GB RAM, {machine['os']} {machine['arch']}; CPU flags: {', '.join(machine['cpu_flags'])}",
        f"- GPUs: {', '.join(g['name'] for g in machine.get('gpus', [])) or 'none'}",
        f"- siliconlab {result['siliconlab_version']} (commit {machine.get('git_commit') or 'n/a'}), "
        + ", ".join(f"{k} {v}" for k, v in machine.get("libraries", {}).items() if k != "siliconlab"),
        f"- threads {result['settings']['threads']}, one process per unit, timing {result['settings']['timing']}",
        f"- baseline: {result['settings']['baseline']} (speedups measured in this run)",
        f"- created {result['created']}{'' if result.get('complete') else ' — INCOMPLETE (interrupted)'}",
    ]
    if result.get("architecture_only"):
        lines.append("- model weights are random: architecture only, for timing")
    floors = result.get("floors") or {}
    if floors:
        lines += [
            "",
            "## Machine floor (measured GEMM rates)",
            "",
            "| device-precision | GFLOP/s | probe |",
            "|---|---|---|",
        ]
        for key, floor in floors.items():
            rate = f"{floor['gflops']:.1f}" if floor.get("gflops") else f"n/a ({floor.get('reason', '')})"
            lines.append(f"| {key} | {rate} | {floor['probe']} |")
    _, every, cells_of = layout(result, wide=True)
    lines += ["", "## Results", "", "| " + " | ".join(every) + " |", "|" + "---|" * len(every)]
    for row in sorted_rows(result):
        lines.append("| " + " | ".join(cells_of(row)) + " |")
    if is_generation(result):
        lines += [
            "",
            "Greedy decoding. TTFT rows: one new token, batch 1; speedup = baseline TTFT p50 / unit's. "
            "Decode rows: decode tok/s = batch x steps / decode time; speedup = baseline step p50 / unit's.",
        ]
    budget_rows = [r for r in result["results"] if r["workload"] == "budget"]
    if budget_rows:
        lines += ["", "Latency budget search (p90 per batch tried):", ""]
        for row in budget_rows:
            tried = ", ".join(f"B{s['batch']}: {s['p90_ms']:.1f} ms" for s in row.get("searched", []))
            verdict = "" if row.get("within_budget", True) else " — even batch 1 exceeds the budget"
            lines.append(f"- {row['unit']} S{row['seq']} ≤ {row['budget_ms']:g} ms: {tried}{verdict}")
    reasons = _energy_reasons(result)
    if reasons:
        lines += ["", "Energy n/a: " + "; ".join(reasons)]
    lines += _load_lines(result)
    lines += _monitor_lines(result)
    if result["failures"]:
        lines += ["", "## Failures", ""] + [f"- **{f['unit']}**: {f['error']}" for f in result["failures"]]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c.stem}]({c.name})" for c in charts]
    lines += ["", "How to read this: docs/benchmarking.md", ""]
    return "\n".join(lines)


def _monitor_lines(result: dict[str, Any]) -> list[str]:
    """bench --monitor: the hardware table and the rows it flagged (none without --monitor)."""
    from siliconlab.bench.timeline import markdown_lines, monitor_notes

    lines = markdown_lines(result)
    return lines + ([""] + [f"- {note}" for note in monitor_notes(result)] if lines and monitor_notes(result) else [])


def _load_lines(result: dict[str, Any]) -> list[str]:
    """The machine-load section: before timing, and per workload while it was timed."""
    load = result.get("machine_load") or {}
    if not load:
        return []

    def fmt(window: dict[str, Any]) -> str:
        parts = [f"{name} mean {window[name]['mean']:g} / max {window[name]['max']:g}"
                 for name in ("other_cores", "steal_pct", "load_1m") if name in window]  # fmt: skip
        return ", ".join(parts) + (" — **flagged**" if window.get("flagged") else "")

    lines = ["", "## Machine load", "", f"- before timing: {fmt(load.get('before') or {})}"]
    seen = set()
    for row in result["results"]:
        label = row.get("workload_label")
        if row.get("contention") and label not in seen:
            seen.add(label)
            lines.append(f"- while timing {label}: {fmt(row['contention'])}")
    policy = result["settings"].get("omp_wait_policy", "default")
    return lines + [f"- OpenMP wait policy in every unit process: {policy} (docs/benchmarking.md)"]
