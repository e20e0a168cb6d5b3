"""The web demo's benchmark tab: the latest bench result of this machine, and a quick bench run from the page.

`siliconlab bench` writes `bench-<model>-<time>.json` (+ `.md`, + a folder of PNG charts of the same stem) into
its `--out` folder (`results/` by default). The tab shows the newest such file whose machine is this one.
A quick bench runs as a `siliconlab bench --quick` subprocess while the demo holds its session lock, so the
demo's own units are quiet while it measures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Sentences of the quick bench's real-text workload: enough for a median, short enough for a demo.
QUICK_TEXTS = 20
TABLE_CHARS = set("┏┃┡│└")
#: bench's first line: "bench minilm: 2 unit(s) x 1 workload(s), 2 thread(s)"
PLANNED = re.compile(r"(\d+) unit\(s\) x (\d+) workload\(s\)")


@lru_cache(maxsize=1)
def this_machine() -> str:
    from siliconlab.bench.machine import machine_info
    from siliconlab.tasks.best import machine_fingerprint

    return machine_fingerprint(machine_info())


def latest_result(results: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest bench result in `results` that was measured on this machine, with its path."""
    from siliconlab.tasks.best import machine_fingerprint

    newest: tuple[str, dict[str, Any], Path] | None = None
    for path in Path(results).glob("bench-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a file being written, or not ours: not a result to show
        if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("siliconlab.bench/"):
            continue
        if machine_fingerprint(data.get("machine", {})) != this_machine() or not data.get("results"):
            continue
        created = str(data.get("created", ""))
        if newest is None or created > newest[0]:
            newest = (created, data, path)
    return (newest[1], newest[2]) if newest else None


def result_rows(result: dict[str, Any]) -> list[list[Any]]:
    """unit, workload, p50 ms, p90 ms, speedup, contention flag: one row per measured (unit, workload)."""
    from siliconlab.bench.contention import flagged

    rows = []
    for row in result.get("results", []):
        latency = row.get("latency_ms") or {}
        speedup = row.get("speedup")
        rows.append([row.get("unit"), row.get("workload_label") or row.get("workload"), _num(latency.get("p50")),
                     _num(latency.get("p90")), _num(speedup), "yes" if flagged(row) else ""])  # fmt: skip
    return rows


def _num(value: Any) -> float | None:
    return round(float(value), 2) if isinstance(value, (int, float)) else None


def charts(path: Path) -> list[str]:
    """The PNG charts bench wrote beside a result: `<stem>-<chart>.png` in the same folder."""
    return [str(p) for p in sorted(path.parent.glob(f"{path.stem}-*.png"))]


def describe(found: tuple[dict[str, Any], Path] | None, results: Path) -> str:
    if found is None:
        return (f"No bench result of this machine in `{results}` yet. Run `siliconlab bench --out {results}` "
                "or the quick bench below.")  # fmt: skip
    result, path = found
    machine = result.get("machine", {})
    timing = (result.get("settings") or {}).get("timing") or {}
    short = timing.get("min_seconds", 1.0) < 1.0  # --quick's timing: a fast look
    quick = " (quick: a fast look, not a result to quote)" if short else ""
    return (f"**{result.get('model')}** benched {result.get('created')} on {machine.get('cpu')} "
            f"({machine.get('cores_logical')} logical cores){quick}  \nfile: `{path}`")  # fmt: skip


def quick_bench_command(units: list[str], results: Path) -> list[str]:
    return [sys.executable, "-m", "siliconlab", "bench", "minilm", "--quick", "--workload", "text",
            "--texts", str(QUICK_TEXTS), "--units", ",".join(units), "--out", str(results), "--no-floor"]  # fmt: skip


def run_quick_bench(units: list[str], results: Path, on_progress: Callable[[int, int, str], None]) -> tuple[int, str]:
    """Run the quick bench (the caller holds the session lock); report each finished row. Returns (exit code,
    the last lines of its output)."""
    command = quick_bench_command(units, results)
    total = len(units)
    done = 0
    tail: list[str] = []
    on_progress(0, total, "starting the bench (converting where needed)")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                          env=_env()) as process:  # fmt: skip
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if not line.strip():
                continue
            tail = (tail + [line])[-12:]
            planned = PLANNED.search(line)
            if planned:  # bench adds its baseline unit: its own count of rows is the one to follow
                total = int(planned.group(1)) * int(planned.group(2))
            if " p50 " in line:
                done += 1
            if line.lstrip()[:1] not in TABLE_CHARS:  # the final table's rows say nothing new
                on_progress(min(done, total), total, line.strip()[:100])
        code = process.wait()
    return code, "\n".join(tail)


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["COLUMNS"] = "120"
    src = str(Path(__file__).resolve().parents[2])  # so the subprocess runs this same siliconlab
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
