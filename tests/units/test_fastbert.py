"""FastBert (units/fastbert/): the model vs Hugging Face on the CPU, the bucketed graph runner's padding, GEMM
tiling, the Triton kernels in Triton's interpreter; the GPU checks skip with the reason when there is no CUDA device.

Shared CUDA helpers are in test_cuda.py, FP8 math in tests/ops/test_fp8.py, NVML in tests/monitor/test_nvml.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from siliconlab.models import resolve
from siliconlab.units.cuda import cuda_availability
from siliconlab.units.fastbert.model import FastBert
from siliconlab.units.fastbert.units import GraphRunner, buckets_for

CUDA = cuda_availability()
needs_cuda = pytest.mark.skipif(not CUDA.ok, reason=CUDA.reason or "CUDA available")


# ---------------------------------------------------------------- buckets


def test_buckets_stop_at_the_position_table():
    assert buckets_for(512) == (16, 32, 64, 128, 256, 512)
    assert buckets_for(128) == (16, 32, 64, 128)
    assert buckets_for(100) == (16, 32, 64, 100)


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
from siliconlab.units.fastbert.kernels import attention as cuda_attention, common as cuda_kernels, gemm as cuda_gemm
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


# ---------------------------------------------------------------- GPU only


@needs_cuda
def test_graph_runner_replays_match_eager_on_gpu(tiny_bert: Path):
    model = resolve(str(tiny_bert)).load()
    ids, mask = _batch(model, TEXTS)
    graphs = GraphRunner(FastBert(model.model, model.task, torch.float16, "cuda"))
    eager = GraphRunner(FastBert(model.model, model.task, torch.float16, "cuda"), use_graphs=False)
    for _ in range(2):
        a, b = graphs.run(ids, mask), eager.run(ids, mask)
        np.testing.assert_allclose(a["sentence_embedding"], b["sentence_embedding"], atol=2e-3)
