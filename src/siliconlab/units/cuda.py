"""What every NVIDIA unit shares: availability, shape buckets, padding, and the host<->device plumbing.

The bucketing and padding helpers are plain numpy so that CPU-only CI tests them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.units.base import Availability

if TYPE_CHECKING:
    import numpy as np

#: Sequence lengths are padded up to one of these; batches up to the next power of two.
SEQ_BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)


#: Device nodes and driver entries one of which exists wherever a GPU torch could use is present (NVIDIA driver,
#: WSL's GPU paravirtualisation, AMD's ROCm).
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


@lru_cache(maxsize=1)
def _torch_cuda_build() -> str | None:
    """torch.version.cuda, read from torch/version.py without importing torch (seconds) where possible."""
    spec = importlib.util.find_spec("torch")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "version.py" if locations else None
    if path is not None and path.is_file():
        version_spec = importlib.util.spec_from_file_location("_siliconlab_torch_version", path)
        if version_spec is not None and version_spec.loader is not None:
            module = importlib.util.module_from_spec(version_spec)
            version_spec.loader.exec_module(module)
            return getattr(module, "cuda", None)
    import torch

    return torch.version.cuda


def _certainly_no_gpu() -> bool:
    """True where torch cannot see a CUDA device whatever its build: macOS, or Linux with no GPU driver loaded.

    Lets `siliconlab units` answer on a CPU-only machine without importing torch just to hear "no"."""
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(path) for path in GPU_DRIVER_PATHS)


def _no_cuda(built: str | None) -> Availability:
    why = "a CPU-only torch build" if built is None else f"torch built for CUDA {built}, but no device/driver"
    return Availability.no(f"no CUDA device (torch.cuda.is_available() is False: {why})")


def cuda_availability(min_capability: tuple[int, int] | None = None) -> Availability:
    """Yes when torch sees a CUDA device (of at least `min_capability`), else why not."""
    if importlib.util.find_spec("torch") is None:
        return Availability.no("missing Python package(s): torch")
    if _certainly_no_gpu():
        return _no_cuda(_torch_cuda_build())
    import torch

    if not torch.cuda.is_available():
        return _no_cuda(torch.version.cuda)
    if min_capability is not None:
        capability = torch.cuda.get_device_capability()
        if capability < min_capability:
            name = torch.cuda.get_device_name()
            need = ".".join(map(str, min_capability))
            have = ".".join(map(str, capability))
            return Availability.no(f"needs compute capability >= {need}; {name} is {have}")
    return Availability.yes()


def seq_bucket(seq: int, buckets: Sequence[int] = SEQ_BUCKETS) -> int:
    """The smallest bucket >= seq; a sequence longer than every bucket is a usage error upstream."""
    if seq < 1:
        raise ValueError(f"sequence length must be >= 1, got {seq}")
    for bucket in buckets:
        if seq <= bucket:
            return bucket
    raise ValueError(f"sequence length {seq} is longer than the largest bucket {buckets[-1]}")


def batch_bucket(batch: int, max_batch: int | None = None) -> int:
    """The next power of two >= batch (1, 2, 4, 8, ...); capped at max_batch when given (then exact above it)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    bucket = 1 << (batch - 1).bit_length()
    if max_batch is not None and bucket > max_batch:
        return max(batch, max_batch)
    return bucket


def pad_inputs(input_ids: np.ndarray, attention_mask: np.ndarray, batch: int, seq: int, pad_id: int = 0) -> np.ndarray:
    """Stack ids and mask into one int64 [2, batch, seq] block (one host->device copy), padded to the bucket.

    Padding never changes the real rows' results: padded positions get mask 0 (no attention to them, no weight
    in pooling) and the outputs are sliced back. Padded batch rows get a single unmasked position so their
    softmax stays finite; they are dropped.
    """
    import numpy as np

    out = np.empty((2, batch, seq), dtype=np.int64)
    fill_padded(out, input_ids, attention_mask, pad_id)
    return out


def fill_padded(out: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray, pad_id: int = 0) -> None:
    """pad_inputs into an existing [2, B, S] int64 buffer (e.g. a pinned staging buffer's numpy view)."""
    b, s = input_ids.shape
    _, batch, seq = out.shape
    if b > batch or s > seq:
        raise ValueError(f"inputs {input_ids.shape} do not fit the bucket ({batch}, {seq})")
    out[0, :b, :s] = input_ids
    out[1, :b, :s] = attention_mask
    if s < seq:
        out[0, :b, s:] = pad_id
        out[1, :b, s:] = 0
    if b < batch:
        out[0, b:] = pad_id
        out[1, b:] = 0
        out[1, b:, 0] = 1


def plan_pieces(batch: int, seq: int, chunks: int, min_tokens: int) -> list[tuple[int, int]]:
    """Split a batch into up to `chunks` row ranges [start, stop) so the device->host copy of one piece
    overlaps the next piece's compute; no split when a piece would fall under `min_tokens` (batch x seq)
    tokens, where GEMMs get too small to stay efficient. Piece sizes are powers of two (graph buckets)."""
    bucket = batch_bucket(batch)
    if chunks <= 1 or (bucket // chunks) * seq < min_tokens or bucket < chunks:
        return [(0, batch)]
    size = bucket // chunks
    return [(start, min(start + size, batch)) for start in range(0, batch, size)]


def is_dense(attention_mask: np.ndarray, batch: int, seq: int) -> bool:
    """True when no position is padding (exact bucket shape, mask all ones): attention can skip the mask."""
    return attention_mask.shape == (batch, seq) and bool(attention_mask.all())


class CudaRunnerMixin:
    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()


def to_host(tensors: Sequence[Any]) -> list[np.ndarray]:
    """Device tensors -> numpy fp32 via pinned memory, one sync for all.

    The pinned blocks come from torch's caching host allocator and live as long as the returned arrays (the
    array keeps its tensor alive), so dropping a result hands the block back for the next call: no page
    faults and a full-speed DMA per call, and no array is ever overwritten behind the caller's back.
    """
    import torch

    if not any(t.is_cuda for t in tensors):
        return [t.float().numpy() for t in tensors]
    hosts = []
    for tensor in tensors:
        host = torch.empty(tensor.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        hosts.append(host)
    torch.cuda.current_stream().synchronize()
    return [host.numpy() for host in hosts]


def cuda_versions() -> dict[str, str]:
    import torch

    versions = {"torch_cuda": str(torch.version.cuda)}
    if torch.cuda.is_available():
        versions["device"] = torch.cuda.get_device_name()
        versions["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    return versions
