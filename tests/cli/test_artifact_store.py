"""One artifact store: what `convert --out DIR` built, `bench --artifacts DIR` reuses instead of converting again."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app


@pytest.mark.slow
def test_bench_reuses_the_artifacts_convert_wrote(tiny_bert: Path, tmp_path: Path):
    store = tmp_path / "store"
    converted = CliRunner().invoke(app, ["convert", str(tiny_bert), "--units", "torch-cpu-fp32", "--out", str(store)])
    assert converted.exit_code == 0, converted.output
    manifest = next(store.glob("*/torch-cpu-fp32/manifest.json"))
    before = manifest.stat().st_mtime_ns
    args = ["bench", str(tiny_bert), "--units", "torch-cpu-fp32", "--artifacts", str(store), "--quick", "--no-floor"]
    result = CliRunner().invoke(app, [*args, "--no-charts", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert manifest.stat().st_mtime_ns == before, "the artifact was reused, not rebuilt"
    assert list(store.glob("*/.bench-latest.json")) == [], "a fixed-shape bench leaves no best-unit record"
