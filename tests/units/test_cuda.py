"""Shared CUDA helpers (units/cuda.py): shape buckets, padding, piece planning, and the CUDA units' availability.

The helpers are plain numpy and run anywhere; GPU parity skips with the reason where there is no CUDA device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.models import resolve
from siliconlab.units import REGISTRY
from siliconlab.units.cuda import (
    batch_bucket,
    cuda_availability,
    fill_padded,
    is_dense,
    pad_inputs,
    plan_pieces,
    seq_bucket,
)

GPU_UNITS = [name for name, unit in REGISTRY.items() if unit.device == "cuda"]
CUDA = cuda_availability()
needs_cuda = pytest.mark.skipif(not CUDA.ok, reason=CUDA.reason or "CUDA available")


# ---------------------------------------------------------------- buckets and padding


def test_seq_buckets_round_up():
    assert [seq_bucket(s) for s in (1, 16, 17, 100, 128, 129, 512)] == [16, 16, 32, 128, 128, 256, 512]
    with pytest.raises(ValueError):
        seq_bucket(513)
    with pytest.raises(ValueError):
        seq_bucket(0)


def test_batch_buckets_are_powers_of_two():
    assert [batch_bucket(b) for b in (1, 2, 3, 5, 8, 9, 64, 65)] == [1, 2, 4, 8, 8, 16, 64, 128]
    assert batch_bucket(300, max_batch=256) == 300 and batch_bucket(200, max_batch=256) == 256


def test_padding_layout():
    ids = np.array([[101, 7, 102], [101, 102, 0]], dtype=np.int64)
    mask = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)
    block = pad_inputs(ids, mask, batch=4, seq=5, pad_id=0)
    assert block.shape == (2, 4, 5) and block.dtype == np.int64
    np.testing.assert_array_equal(block[0, :2, :3], ids)
    np.testing.assert_array_equal(block[1, :2, :3], mask)
    assert not block[1, :2, 3:].any() and not block[0, :2, 3:].any()
    # padded batch rows: one visible position so softmax stays finite, nothing else
    np.testing.assert_array_equal(block[1, 2:], [[1, 0, 0, 0, 0]] * 2)
    stale = np.full((2, 4, 5), 9, dtype=np.int64)
    fill_padded(stale, ids, mask)
    np.testing.assert_array_equal(stale, block)
    with pytest.raises(ValueError):
        pad_inputs(ids, mask, batch=1, seq=5)


def test_dense_only_for_exact_unpadded_shapes():
    ones = np.ones((2, 16), dtype=np.int64)
    assert is_dense(ones, 2, 16)
    assert not is_dense(ones, 2, 32) and not is_dense(ones, 4, 16)
    ones[1, -1] = 0
    assert not is_dense(ones, 2, 16)


def test_large_batches_split_into_overlapping_pieces():
    assert plan_pieces(64, 128, chunks=2, min_tokens=2048) == [(0, 32), (32, 64)]
    assert plan_pieces(48, 128, chunks=2, min_tokens=2048) == [(0, 32), (32, 48)]
    assert plan_pieces(64, 128, chunks=4, min_tokens=2048) == [(0, 16), (16, 32), (32, 48), (48, 64)]
    assert plan_pieces(8, 128, chunks=2, min_tokens=2048) == [(0, 8)]  # pieces would be too small
    assert plan_pieces(1, 128, chunks=2, min_tokens=0) == [(0, 1)]
    assert plan_pieces(64, 128, chunks=1, min_tokens=0) == [(0, 64)]


# ---------------------------------------------------------------- availability, skips


def test_gpu_units_say_why_they_are_unavailable():
    assert len(GPU_UNITS) >= 6  # torch fp32/fp16/bf16, the FastBert graph units, ORT CUDA/TensorRT
    for name in GPU_UNITS:
        available = REGISTRY[name]().availability()
        if available.ok:
            assert available.reason == "", name
        else:
            assert available.reason.strip(), f"{name} is unavailable without a reason"
        if not CUDA.ok and name.startswith("torch-cuda"):
            assert not available.ok and ("CUDA" in available.reason or "torch" in available.reason), name


@needs_cuda
@pytest.mark.parametrize("name", [n for n in GPU_UNITS if n.startswith("torch-cuda")])
def test_gpu_unit_parity_on_tiny_bert(name: str, tiny_bert: Path, artifact_cache: Path):
    from siliconlab.convert import Converter

    unit = REGISTRY[name]()
    if not unit.availability().ok:
        pytest.skip(unit.availability().reason)
    outcome = Converter(resolve(str(tiny_bert)), artifact_cache, threads=1).convert_unit(unit)
    assert outcome.ok, outcome.error
