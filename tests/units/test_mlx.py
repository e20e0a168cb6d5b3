"""MLX unit: parity with PyTorch on a padded batch (the CPU build on Linux), Metal on Apple silicon.

Needs only mlx: a missing coremltools must not skip these.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from siliconlab.convert import Converter, load_artifact
from siliconlab.models import resolve
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.units import get_unit

pytest.importorskip("mlx.core", reason="mlx is not installed (pip install -e '.[apple]' or mlx[cpu] on Linux)")

APPLE_SILICON = sys.platform == "darwin" and platform.machine() == "arm64"


def _cosine_min(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1, a.shape[-1]).double(), b.reshape(-1, b.shape[-1]).double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


def test_mlx_is_available_where_it_is_installed():
    assert get_unit("mlx").availability().ok, get_unit("mlx").availability().reason


def test_mlx_matches_pytorch_on_a_padded_tiny_batch(tiny_bert: Path, artifact_cache: Path):
    unit = get_unit("mlx")
    outcome = Converter(resolve(str(tiny_bert)), artifact_cache, threads=1).convert_unit(unit)
    assert outcome.ok, outcome.error
    assert outcome.manifest["parity"]["cosine_min"] >= 0.9999
    runner, _ = load_artifact(outcome.artifact_dir, unit, threads=1)
    model = resolve(str(tiny_bert)).load()
    ids = np.random.default_rng(1).integers(1000, 2000, size=(2, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    got = runner.run(ids, mask)
    with torch.inference_mode():
        expected = EncoderWithHead(model.model, model.task)(torch.from_numpy(ids), torch.from_numpy(mask))
    assert _cosine_min(torch.from_numpy(got["sentence_embedding"]), expected[1]) >= 0.9999
    assert _cosine_min(torch.from_numpy(got["token_states"][1, :4]), expected[0][1, :4]) >= 0.9999


@pytest.mark.skipif(not APPLE_SILICON, reason="MLX on Metal needs macOS on Apple silicon")
def test_mlx_runs_on_metal():
    import mlx.core as mx

    assert mx.metal.is_available() and get_unit("mlx").device == "gpu"
