"""Kill the CLI at a random point with SIGKILL, rerun the same command: no row lost or doubled, and the
output equals an uninterrupted run's byte for byte (int8 results depend on batch neighbours, so this also
proves the batches were re-formed identically)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from siliconlab.cli import app

UNIT = "onnxruntime-cpu-int8"


def _done_chunks(journal: Path) -> int:
    try:
        return len(json.loads(journal.read_text())["done"])
    except (OSError, ValueError, KeyError):
        return 0


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path: Path, texts: list[str], runner: object) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    common = ["--input", str(source), "--unit", UNIT, "--chunk-rows", "4"]  # 96 rows: 24 chunks
    reference = CliRunner().invoke(app, ["batch", "minilm", *common, "--out", str(tmp_path / "whole.jsonl")])
    assert reference.exit_code == 0, reference.output

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kill_after, extra = rng.randint(1, 16), rng.uniform(0.0, 0.05)  # leaves >= 8 chunks to kill in
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [sys.executable, "-m", "siliconlab", "batch", "minilm", *common, "--out", str(out)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = tmp_path / "out.jsonl.parts" / "journal.json"
    deadline = time.monotonic() + 240
    while _done_chunks(journal) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(extra)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the job ended before the kill (seed {seed})"
    assert not out.exists()
    committed = _done_chunks(journal)
    assert 1 <= committed < 24, f"seed {seed}: {committed} chunks committed at the kill"

    resumed = CliRunner().invoke(app, ["batch", "minilm", *common, "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from an earlier run" in resumed.output
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes(), f"seed {seed}"
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(range(len(texts)))
    assert not (tmp_path / "out.jsonl.parts").exists()
