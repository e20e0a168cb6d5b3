"""The live dashboard: one rich renderable built from the latest Sampler poll (no sensor reads of its own).

`render(view)` is a pure function of a `View` (the latest readings, the unavailable sources with their
reasons, the 3 busiest other processes, the watched command's last output lines), so the tests render it
into rich's recording console and read the text back; `siliconlab monitor` puts it in a `rich.live.Live`.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from siliconlab.monitor.gpu import throttle_names

BAR_WIDTH = 20


@dataclass
class View:
    """Everything one frame shows."""

    values: dict[str, float]
    unavailable: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    top: Sequence[tuple[int, str, float]] = ()
    watching: str = ""  # "pid 123 (python)" or the command line
    elapsed_s: float = 0.0
    interval_s: float = 0.5
    sampler_ms: float = 0.0
    gpu_names: dict[int, str] = field(default_factory=dict)
    output: Sequence[str] = ()
    recording: str = ""


def bar(percent: float | None, width: int = BAR_WIDTH) -> Text:
    """A fixed-width bar with the value: green under 50 %, yellow under 85 %, red above."""
    if percent is None:
        return Text("n/a", style="dim")
    filled = max(0, min(width, round(percent / 100 * width)))
    style = "green" if percent < 50 else "yellow" if percent < 85 else "red"
    return Text("█" * filled, style=style) + Text("·" * (width - filled), style="dim") + Text(f" {percent:5.1f}%")


def _get(values: dict[str, float], key: str) -> float | None:
    value = values.get(key)
    return None if value is None else float(value)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _indices(values: dict[str, float], prefix: str, suffix: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+){re.escape(suffix)}$")
    return sorted({int(m.group(1)) for key in values if (m := pattern.match(key))})


def cpu_panel(view: View) -> Panel:
    values = view.values
    table = Table.grid(padding=(0, 2))
    table.add_column("core")
    table.add_column("busy")
    table.add_column("clock", justify="right")
    cores = _indices(values, "cores.cpu", "_busy_pct") or _indices(values, "clock.cpu", "_mhz")
    for core in cores:
        mhz = _get(values, f"clock.cpu{core}_mhz")
        table.add_row(f"cpu{core}", bar(_get(values, f"cores.cpu{core}_busy_pct")), _fmt(mhz, ".0f", " MHz"))
    machine = [
        f"busy {_fmt(_get(values, 'cpu.busy_pct'), '.1f', '%')}",
        f"steal {_fmt(_get(values, 'cpu.steal_pct'), '.1f', '%')}",
        f"iowait {_fmt(_get(values, 'cpu.iowait_pct'), '.1f', '%')}",
        f"load {_fmt(_get(values, 'loadavg.load_1m'), '.2f')} / {_fmt(_get(values, 'loadavg.load_5m'), '.2f')}"
        f" / {_fmt(_get(values, 'loadavg.load_15m'), '.2f')} on {os.cpu_count()} cores",
    ]
    sysfs = _get(values, "cpufreq.mean_mhz")
    if sysfs is not None:
        machine.append(f"cpufreq {sysfs:.0f} MHz (min {_fmt(_get(values, 'cpufreq.min_mhz'), '.0f')})")
    other = _get(values, "procs.other_cores")
    if other is not None:
        busiest = ", ".join(f"{name} ({pid}) {cores:.2f}" for pid, name, cores in view.top if cores >= 0.01)
        machine.append(f"other processes {other:.2f} cores" + (f": {busiest}" if busiest else ""))
    return Panel(Group(table, Text("  ".join(machine[:4])), *[Text(line) for line in machine[4:]]), title="CPU")


def memory_panel(view: View) -> Panel:
    values = view.values
    used, available = _get(values, "memory.used_mb"), _get(values, "memory.available_mb")
    total = None if used is None or available is None else used + available
    swap = _get(values, "memory.swap_used_mb")
    lines = [
        Text("RAM  ") + bar(_get(values, "memory.used_pct"))
        + Text(f"  {_fmt(used and used / 1024, '.1f')} of {_fmt(total and total / 1024, '.1f')} GiB"),
        Text("swap ") + bar(_get(values, "memory.swap_used_pct")) + Text(f"  {_fmt(swap, '.0f')} MiB"),
    ]  # fmt: skip
    return Panel(Group(*lines), title="Memory")


def process_panel(view: View) -> Panel | None:
    if not view.watching:
        return None
    values = view.values
    cpu = _get(values, "proc.cpu_pct")
    text = Text(f"{view.watching}\n")
    text += Text(f"CPU {_fmt(cpu, '.0f', '%')} of one core  RSS {_fmt(_get(values, 'proc.rss_mb'), '.0f', ' MiB')}  ")
    threads, processes = _get(values, "proc.threads"), _get(values, "proc.processes")
    text += Text(f"threads {_fmt(threads, '.0f')}  processes {_fmt(processes, '.0f')}")
    if "proc" in view.unavailable:
        text += Text(f"\n{view.unavailable['proc']}", style="dim")
    return Panel(text, title="Watched process (with children)")


def gpu_panel(view: View) -> Panel | None:
    values = view.values
    gpus = _indices(values, "gpu", ".used_mb")
    if not gpus:
        return None
    table = Table(expand=False, box=None, padding=(0, 1))
    for column in ("gpu", "util", "memory", "power", "temp", "SM clock", "throttle"):
        table.add_column(column, justify="left" if column in ("gpu", "util", "throttle") else "right")
    for index in gpus:
        key = f"gpu{index}."
        used, total = _get(values, key + "used_mb"), _get(values, key + "total_mb")
        power, limit = _get(values, key + "power_w"), _get(values, key + "power_limit_w")
        sm, sm_max = _get(values, key + "sm_mhz"), _get(values, key + "sm_max_mhz")
        mask = _get(values, key + "throttle")
        reasons = "n/a" if mask is None else (", ".join(throttle_names(int(mask))) or "none")
        table.add_row(
            f"{index} {view.gpu_names.get(index, '')}".strip(),
            bar(_get(values, key + "util_pct"), 12),
            f"{_fmt(used and used / 1024, '.1f')}/{_fmt(total and total / 1024, '.0f')} GiB",
            f"{_fmt(power, '.0f')}/{_fmt(limit, '.0f')} W",
            _fmt(_get(values, key + "temp_c"), ".0f", " °C"),
            f"{_fmt(sm, '.0f')}/{_fmt(sm_max, '.0f')} MHz",
            reasons,
        )
    return Panel(table, title="NVIDIA GPUs (NVML)")


def power_panel(view: View) -> Panel | None:
    values, parts = view.values, []
    if "powermetrics.power_w" in values:
        rails = "  ".join(f"{rail.upper()} {_fmt(_get(values, f'powermetrics.{rail}_w'), '.2f', ' W')}"
                          for rail in ("cpu", "gpu", "ane"))  # fmt: skip
        parts.append(f"powermetrics {values['powermetrics.power_w']:.2f} W  {rails}")
    if "rapl.energy_j" in values:
        parts.append(f"RAPL package energy {values['rapl.energy_j']:.1f} J since start")
    energy = [f"gpu{i} {values[f'gpu{i}.energy_j']:.0f} J" for i in _indices(values, "gpu", ".energy_j")]
    if energy:
        parts.append("GPU board energy since start: " + ", ".join(energy))
    return Panel(Text("\n".join(parts)), title="Power") if parts else None


def latest_values(samples: Sequence[object], polls: int = 3) -> dict[str, float]:
    """The newest value of every reading over the last few polls: a delta source skips a poll that comes
    too soon after the previous one (the one at a sampler's stop, say), and its figure should not blink."""
    values: dict[str, float] = {}
    for sample in list(samples)[-polls:]:
        values.update(sample.values)  # type: ignore[attr-defined]
    return values


def render(view: View) -> RenderableType:
    """One frame: header, CPU, memory, watched process, GPUs, power, command output, unavailable sensors."""
    header = Text(f"siliconlab monitor — {platform.node()}  ", style="bold")
    header += Text(f"{view.elapsed_s:6.1f} s  every {view.interval_s:g} s  sampler {view.sampler_ms:.1f} ms/poll")
    if view.recording:
        header += Text(f"  recording to {view.recording}")
    parts: list[RenderableType] = [header, cpu_panel(view), memory_panel(view)]
    parts += [p for p in (process_panel(view), gpu_panel(view), power_panel(view)) if p is not None]
    if view.output:
        parts.append(Panel(Text("\n".join(view.output)), title="command output (last lines)"))
    missing = {**view.unavailable, **{k: f"error: {v}" for k, v in view.errors.items() if k not in view.unavailable}}
    if missing:
        lines = Text()
        for name, reason in sorted(missing.items()):
            lines += Text(f"{name}: ", style="bold dim") + Text(f"unavailable — {reason}\n", style="dim")
        parts.append(lines)
    return Group(*parts)


def render_text(view: View, width: int = 110, svg: bool = False) -> str:
    """The frame as plain text, or as SVG, through rich's recording console: for tests, snapshots and logs."""
    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, file=sink, color_system="truecolor" if svg else None)
        console.print(render(view))
    return console.export_svg(title="siliconlab monitor") if svg else console.export_text()
