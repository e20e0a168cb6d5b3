"""`siliconlab monitor` (live dashboard or headless recording) and `siliconlab plot` (a recording to PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siliconlab.cli.common import console, err, handles_errors
from siliconlab.errors import UsageError


@handles_errors
def monitor(
    command: Annotated[
        list[str] | None, typer.Argument(help="After `--`: a command to run and watch; its exit code is passed on.")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls of every sensor.")] = 0.5,
    record: Annotated[
        Path | None, typer.Option(help="Write every poll to FILE.csv or FILE.parquet instead of the dashboard.")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop by itself after this many seconds.")] = None,
    pid: Annotated[int | None, typer.Option(help="Watch this running process (and its children).")] = None,
    dashboard: Annotated[
        bool | None,
        typer.Option("--dashboard/--no-dashboard", help="Show the live dashboard (default: unless --record)."),
    ] = None,
) -> None:
    """Watch the hardware live: per-core CPU use and clock, load, memory and swap, a watched process, NVIDIA
    GPUs (utilisation, memory, power, temperature, SM clock, throttle reasons) and macOS power.

    A sensor this machine lacks is listed as unavailable with the reason.

    Examples: `siliconlab monitor --duration 10`; `siliconlab monitor --record run.csv -- siliconlab bench --quick`.
    """
    from siliconlab.monitor.session import MonitorOptions, MonitorRun

    options = MonitorOptions(interval=interval, record=record, duration=duration, pid=pid, command=command or None,
                             dashboard=dashboard if dashboard is not None else record is None)  # fmt: skip
    try:
        run = MonitorRun(options, console, say=lambda line: err.print(line, highlight=False))
        code = run.run()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if code:
        raise typer.Exit(code)


@handles_errors
def plot(
    file: Annotated[Path, typer.Argument(help="A monitor recording (.csv/.parquet) or a bench result (.json).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The PNG to write (default: FILE with .png).")] = None,
) -> None:
    """Draw a monitor recording, or the hardware timelines of a `bench --monitor` result, as a PNG."""
    target = out or file.with_suffix(".png")
    if target.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got '{target}'")
    if file.suffix.lower() == ".json":
        from siliconlab.bench.charts import utilisation_timeline
        from siliconlab.bench.report import load_result

        result = load_result(file)
        if not (result.get("monitor") or {}).get("units"):
            raise UsageError(f"{file} has no hardware timelines: run `siliconlab bench --monitor`")
        made = utilisation_timeline(result, target)
    else:
        from siliconlab.monitor.plot import plot_recording
        from siliconlab.monitor.recording import read_recording

        try:
            data = read_recording(file)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not data["t_s"]:
            raise UsageError(f"{file} holds no samples")
        made = plot_recording(data, target, title=file.name)
    console.print(f"chart: {made}", highlight=False)
