"""What the GPU scratch scripts (explore.py, small_m.py) share: named sections that run when selected."""

from __future__ import annotations

import os
import time
import traceback


def section_runner(default: str):
    """A decorator factory: `@section("name")` runs the function at once if SECTIONS (env, comma-separated,
    else `default`) names it, printing its duration; an exception is printed and the next section goes on."""
    selected = set(os.environ.get("SECTIONS", default).split(","))

    def section(name: str):
        def wrap(fn):
            if name in selected:
                print(f"\n== {name}", flush=True)
                started = time.perf_counter()
                try:
                    fn()
                except Exception:
                    traceback.print_exc()
                print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
            return fn

        return wrap

    return section
