"""Concurrent converts of one model+unit: the second waits for the first's lock, then reuses its artifact."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from siliconlab.convert import Converter
from siliconlab.models import resolve
from siliconlab.store import lock_path
from siliconlab.units import get_unit

UNIT = "onnxruntime-cpu-fp32"


def test_two_concurrent_converts_convert_once(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    unit_class = type(get_unit(UNIT))
    real_convert = unit_class.convert
    calls: list[float] = []

    def counting_convert(self, model, out_dir):
        calls.append(time.time())
        return real_convert(self, model, out_dir)

    monkeypatch.setattr(unit_class, "convert", counting_convert)
    start = threading.Barrier(2)
    outcomes = []

    def convert() -> None:
        converter = Converter(resolve(str(tiny_model)), tmp_path, threads=1)
        start.wait()
        outcomes.append(converter.convert_unit(get_unit(UNIT)))

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(calls) == 1, "the second convert must wait for the first and reuse its artifact"
    assert sorted(o.status for o in outcomes) == ["cached", "converted"], [o.error for o in outcomes]
    assert outcomes[0].artifact_dir == outcomes[1].artifact_dir


def test_convert_waits_for_a_lock_held_by_another_process(converted: Path, tiny_model: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(converted, out)
    lock = lock_path(out / "tiny-bert", UNIT)
    hold = 3.0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"handle = open({str(lock)!r}, 'a')\n"
            "fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            f"time.sleep({hold})\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.perf_counter()
        outcome = Converter(resolve(str(tiny_model)), out, threads=1).convert_unit(get_unit(UNIT))
        waited = time.perf_counter() - started
    finally:
        holder.wait(timeout=30)
    assert outcome.status == "cached"
    assert waited >= hold - 0.5, f"returned after {waited:.2f} s while the other process held the lock"
