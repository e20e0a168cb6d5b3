"""torch-cuda-{fp16,bf16}-graph and torch-cuda-fp8: FastBert replayed from CUDA graphs, one per shape bucket.

A call pads its inputs up to a bucket (sequence to 16/32/64/128/256/512, batch to the next power of two),
copies ids+mask into that bucket's static device buffer in one transfer, replays the graph and copies the
true-shape slice of the outputs back. Graphs are captured lazily, the first time a bucket is seen (a warm-up
pass compiles the Triton kernels and picks cuBLAS algorithms first); all share one memory pool. Inputs with
no padding at all replay a graph without the attention mask, which lets SDPA use flash attention.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from siliconlab.models.base import OUTPUT_NAMES
from siliconlab.units.base import HALF_COSINE_MIN, Availability, Conversion, Unit
from siliconlab.units.cuda import (
    SEQ_BUCKETS,
    CudaRunnerMixin,
    batch_bucket,
    cuda_availability,
    cuda_versions,
    fill_padded,
    is_dense,
    plan_pieces,
    seq_bucket,
    to_host,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from siliconlab.models.base import LoadedModel
    from siliconlab.units.fastbert.model import FastBert

RECIPE_FILE = "fastbert.json"
FP8_COSINE_MIN = 0.99


def buckets_for(max_positions: int) -> tuple[int, ...]:
    """SEQ_BUCKETS below the model's position table, then the table size itself as the last bucket."""
    return tuple(b for b in SEQ_BUCKETS if b < max_positions) + (max_positions,)


@dataclass
class Bucket:
    graph: Any
    device_in: torch.Tensor  # int64 [2, B, S]: ids, mask
    host_in: np.ndarray  # numpy view of a pinned [2, B, S] staging buffer
    host_tensor: torch.Tensor
    outputs: tuple[torch.Tensor, ...]


class GraphRunner(CudaRunnerMixin):
    """Bucketed, padded execution of a FastBert; on a CPU model (tests) the same path runs without graphs.

    Large batches run as `chunks` pieces, each from its own graph with its own output buffers, so the
    device->host copy of one piece (25 MB of fp32 token states at B64 S128, ~0.47 ms over PCIe) overlaps the
    next piece's compute on a second stream.
    """

    CHUNKS = 1  # measured on H100 (NOTES.md): 2 pieces gave no gain at B64 S128, 4 were slower
    MIN_CHUNK_TOKENS = 2048

    def __init__(self, model: FastBert, use_graphs: bool = True, chunks: int | None = None):
        import torch

        self.model = model
        self.output_names = OUTPUT_NAMES[model.task]
        self.seq_buckets = buckets_for(model.max_positions)
        self.cuda = model.device.type == "cuda"
        self.use_graphs = use_graphs and self.cuda
        self.chunks = (self.CHUNKS if chunks is None else chunks) if self.cuda else 1
        self.buckets: dict[tuple[int, int, bool, int], Bucket] = {}
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self.copy_stream = torch.cuda.Stream() if self.cuda else None

    def synchronize(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def _capture(self, batch: int, seq: int, dense: bool) -> Bucket:
        import torch

        host_tensor = torch.empty((2, batch, seq), dtype=torch.int64, pin_memory=self.cuda)
        host_in = host_tensor.numpy()
        host_in[0] = self.model.pad_id
        host_in[1] = 1
        device_in = host_tensor.to(self.model.device)
        if not self.use_graphs:
            return Bucket(None, device_in, host_in, host_tensor, ())
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(2):  # compiles kernels, picks algorithms, sizes the workspace outside the capture
                self.model(device_in[0], device_in[1], dense)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, pool=self.pool):
            outputs = self.model(device_in[0], device_in[1], dense)
        return Bucket(graph, device_in, host_in, host_tensor, tuple(outputs))

    def bucket_shape(self, batch: int, seq: int) -> tuple[int, int]:
        return batch_bucket(batch), seq_bucket(seq, self.seq_buckets)

    def _launch(self, input_ids: np.ndarray, attention_mask: np.ndarray, seq: int, slot: int):
        """Stage one piece's inputs and run its graph; returns its outputs sliced to the true shape."""
        import torch

        b, s = input_ids.shape
        batch = batch_bucket(b)
        dense = is_dense(attention_mask, batch, seq)
        key = (batch, seq, dense, slot)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = self._capture(batch, seq, dense)
        fill_padded(bucket.host_in, input_ids, attention_mask, self.model.pad_id)
        bucket.device_in.copy_(bucket.host_tensor, non_blocking=self.cuda)
        if bucket.graph is not None:
            bucket.graph.replay()
            outputs = bucket.outputs
        else:
            with torch.inference_mode():
                outputs = self.model(bucket.device_in[0], bucket.device_in[1], dense)
        if self.model.classifier:
            return [outputs[0][:b]]
        return [outputs[0][:b, :s], outputs[1][:b]]

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        b, s = input_ids.shape
        _, seq = self.bucket_shape(b, s)
        pieces = plan_pieces(b, seq, self.chunks, self.MIN_CHUNK_TOKENS)
        if len(pieces) == 1:
            return dict(zip(self.output_names, to_host(self._launch(input_ids, attention_mask, seq, 0))))
        main = torch.cuda.current_stream()
        assert self.copy_stream is not None  # more than one piece only on CUDA (self.chunks is 1 elsewhere)
        hosts: list[torch.Tensor] = []
        for slot, (start, stop) in enumerate(pieces):
            outputs = self._launch(input_ids[start:stop], attention_mask[start:stop], seq, slot)
            if not hosts:
                hosts = [torch.empty((b, *o.shape[1:]), dtype=torch.float32, pin_memory=True) for o in outputs]
            self.copy_stream.wait_stream(main)
            with torch.cuda.stream(self.copy_stream):
                for host, out in zip(hosts, outputs):
                    host[start:stop].copy_(out, non_blocking=True)
        self.copy_stream.synchronize()
        return dict(zip(self.output_names, (host.numpy() for host in hosts)))


class GraphUnit(Unit):
    engine = "pytorch+triton"
    device = "cuda"
    requires = ("torch", "transformers")
    recipe = "fastbert-4"
    fp8: ClassVar[bool] = False
    min_capability: ClassVar[tuple[int, int] | None] = None

    def platform_availability(self) -> Availability:
        available = cuda_availability(self.min_capability)
        if available.ok and importlib.util.find_spec("triton") is None:
            return Availability.no("missing Python package(s): triton (the fused LayerNorm/GELU/pool kernels)")
        return available

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        from siliconlab.units.fastbert.model import check_supported

        check_supported(model.model.config)
        model.model.save_pretrained(out_dir, safe_serialization=True)
        recipe = {
            "precision": self.precision,
            "fp8": self.fp8,
            "fused": ["qkv-gemm+bias", "bias+residual+layernorm", "bias+gelu", "embed+layernorm", "pool"],
            "gemm": "Triton narrow tiles + split-K into the LayerNorm for <= 128 tokens (not fp8); cuBLASLt above",
            "attention": "Triton one-tile kernel for seq <= 128 at <= 512 tokens; SDPA (flash / masked) otherwise",
            "launch": "programmatic dependent launch on Hopper+ (GEMMs prefetch weights into L2 meanwhile)",
            "seq_buckets": list(buckets_for(int(model.config.max_position_embeddings))),
            "batch_buckets": "powers of two",
            "graphs": "captured lazily per (batch, seq, padded?) bucket",
        }
        if self.fp8:
            recipe["scaling"] = "weights per output channel, activations per token (e4m3, fp32 accumulate)"
        (out_dir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
        return Conversion(graph=recipe, library_versions=cuda_versions() | _triton_version())

    def load(self, artifact_dir: Path, threads: int) -> GraphRunner:
        import torch

        from siliconlab.models.reference import load_hf_module
        from siliconlab.units.fastbert.model import FastBert
        from siliconlab.units.torch.cuda import DTYPES

        module = load_hf_module(artifact_dir)
        dtype = torch.bfloat16 if self.fp8 else DTYPES[self.precision]
        model = FastBert(module.model, module.task, dtype, "cuda", fp8=self.fp8)
        return GraphRunner(model)


def _triton_version() -> dict[str, str]:
    import triton

    return {"triton": triton.__version__}


class TorchCudaFp16Graph(GraphUnit):
    name = "torch-cuda-fp16-graph"
    precision = "fp16"
    cosine_min = HALF_COSINE_MIN


class TorchCudaBf16Graph(GraphUnit):
    name = "torch-cuda-bf16-graph"
    precision = "bf16"
    cosine_min = HALF_COSINE_MIN


class TorchCudaFp8(GraphUnit):
    name = "torch-cuda-fp8"
    precision = "fp8"
    cosine_min = FP8_COSINE_MIN
    fp8 = True
    min_capability = (8, 9)
