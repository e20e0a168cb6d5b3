"""Render one dashboard frame to text and SVG (rich's recording console), e.g. on a machine without a terminal.

    python benchmarks/monitor/snapshot.py OUT_STEM [--after 20] [--seconds 2] [--pid PID]

Waits `--after` seconds, polls every sensor for `--seconds` through the same Sampler and sources as
`siliconlab monitor`, then writes OUT_STEM.txt and OUT_STEM.svg with the frame of the newest poll.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from siliconlab.monitor.dashboard import View, latest_values, render_text
from siliconlab.monitor.sampler import Sampler
from siliconlab.monitor.sources import monitor_sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stem", type=Path)
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--pid", type=int, default=None)
    args = parser.parse_args()
    time.sleep(args.after)
    sources = monitor_sources(args.pid)
    with Sampler(sources, interval=0.5) as sampler:
        time.sleep(args.seconds)
    procs = next(s for s in sources if s.name == "procs")
    gpus = {int(s.name[3:]): getattr(s, "device_name", "") for s in sources if s.name.startswith("gpu")}
    view = View(values=latest_values(sampler.samples), unavailable=sampler.unavailable, top=procs.top,
                watching=f"pid {args.pid}" if args.pid else "", elapsed_s=args.seconds, interval_s=0.5,
                sampler_ms=sampler.summary()["cost_ms"]["mean"], gpu_names=gpus)  # fmt: skip
    args.stem.with_suffix(".txt").write_text(render_text(view, width=110))
    args.stem.with_suffix(".svg").write_text(render_text(view, width=110, svg=True))
    print(render_text(view, width=110))


if __name__ == "__main__":
    main()
