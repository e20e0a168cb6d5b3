"""torch-cuda-{bf16,fp16,fp32} for decoders: greedy decoding with a static KV cache and CUDA-graph replay.

The artifact is the HF model saved as safetensors in the unit's precision. `load` wraps it in a
`CudaGraphGenerator` (cuda_generate.py): the prompt runs through the HF forward (prefill), each further token
is one replay of a captured decode step — for Llama-family models the Triton step (triton_llama.py, ~5
kernels per layer), else the HF forward itself — with greedy argmax and bookkeeping on the device.
`GraphDecoderRunner` puts that behind the DecoderRunner protocol (units/base.py): prefill/decode_step for
teacher-forced parity, and a `generate` that keeps the GPU one token ahead of the host, so a per-token callback
(streaming, the bench's timestamps) does not stall the device between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.units.base import (
    HALF_AGREEMENT_MIN,
    HALF_COSINE_MIN,
    Availability,
    Conversion,
    GenerativeUnit,
    TokenCallback,
)

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import LoadedModel
    from siliconlab.units.torch.static_cache import StaticCacheDecoder

#: Cache slots per sequence: the context a chat may use on this unit (models with a longer context are capped;
#: the chat task truncates prompts to it). Each batch size gets its own cache of this length.
MAX_LEN = 2048
#: Largest batch one generator serves (the bench's decode rows use 1 and 8).
MAX_BATCH = 8


@dataclass
class GraphState:
    """The `cache` a runner's prefill hands out: which static slot holds it, and which prefill filled it."""

    key: tuple[int, bool]
    epoch: int
    written: int  #: tokens in the cache (prompt + steps)


class _Fetch:
    """Device -> host copies of one token column that overlap the next step (pinned buffer + events on CUDA)."""

    def __init__(self, hist: torch.Tensor) -> None:
        import torch

        self.hist = hist
        self.cuda = hist.device.type == "cuda"
        self.host = torch.empty(hist.shape, dtype=hist.dtype, pin_memory=self.cuda)
        self.events: dict[int, Any] = {}

    def start(self, column: int) -> None:
        import torch

        self.host[:, column].copy_(self.hist[:, column], non_blocking=self.cuda)
        if self.cuda:
            self.events[column] = torch.cuda.Event()
            self.events[column].record()

    def get(self, column: int) -> np.ndarray:
        event = self.events.pop(column, None)
        if event is not None:
            event.synchronize()
        return self.host[:, column].numpy().copy()


class GraphDecoderRunner:
    """A `StaticCacheDecoder` (a `CudaGraphGenerator` on the GPU) behind the DecoderRunner protocol."""

    def __init__(self, decoder: StaticCacheDecoder, max_length: int) -> None:
        self.decoder = decoder
        self.max_length = max_length
        self._epochs: dict[tuple[int, bool], int] = {}

    def _ids(self, input_ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        return ids[None, :] if ids.ndim == 1 else ids

    def _prefill(self, ids: np.ndarray, reserve: int) -> Any:
        self.decoder.prefill(ids, _reserve=reserve)
        slot = self.decoder._current
        assert slot is not None  # prefill() just set it
        key = (ids.shape[0], slot.mask is not None)
        self._epochs[key] = self._epochs.get(key, 0) + 1
        return slot, GraphState(key, self._epochs[key], ids.shape[1])

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, GraphState]:
        slot, state = self._prefill(self._ids(input_ids), 1)
        return slot.logits.float().cpu().numpy(), state

    def decode_step(self, token_ids: np.ndarray, cache: GraphState) -> tuple[np.ndarray, GraphState]:
        """Feed one given token per row (teacher forcing or a caller's own sampling) and step once."""
        import torch

        if self._epochs.get(cache.key) != cache.epoch:
            raise UsageError("this cache was overwritten by a later prefill of the same batch size")
        if cache.written >= self.decoder.max_len:
            raise UsageError(f"the cache is full ({self.decoder.max_len} tokens)")
        slot = self.decoder._slots[cache.key]
        tokens = torch.as_tensor(np.asarray(token_ids, dtype=np.int64).reshape(-1, 1))
        slot.tok.copy_(tokens.to(slot.tok.device))
        with torch.no_grad():
            logits = self.decoder._run_step(slot)
        return logits.float().cpu().numpy(), GraphState(cache.key, cache.epoch, cache.written + 1)

    def generate(self, input_ids: np.ndarray, max_new_tokens: int, on_token: TokenCallback | None = None) -> np.ndarray:
        """Greedy tokens [batch, <= max_new_tokens]. Step t+1 is queued before token t is handed to `on_token`,
        so the GPU never waits for the host; a stop leaves one extra step computed and discarded."""
        import torch

        ids = self._ids(input_ids)
        if not 1 <= max_new_tokens <= self.decoder.max_len - ids.shape[1]:
            raise UsageError(f"max_new_tokens must be in 1..{self.decoder.max_len - ids.shape[1]} for a prompt of "
                             f"{ids.shape[1]} tokens, got {max_new_tokens}")  # fmt: skip
        slot, _ = self._prefill(ids, max_new_tokens)
        fetch = _Fetch(slot.hist)
        fetch.start(0)
        steps: list[np.ndarray] = []
        with torch.no_grad():
            for column in range(max_new_tokens):
                if column + 1 < max_new_tokens:
                    self.decoder._run_step(slot)  # writes hist[:, column + 1]
                    fetch.start(column + 1)
                steps.append(fetch.get(column))
                if on_token is not None and on_token(steps[-1]):
                    break
        return np.stack(steps, axis=1)

    def synchronize(self) -> None:
        self.decoder._synchronize()


class _TorchCudaDecoder(GenerativeUnit):
    """One precision of the CUDA-graph decoder; subclasses set name/precision/gates."""

    engine = "pytorch"
    device = "cuda"
    requires = ("torch", "transformers")
    dtype_name: ClassVar[str] = "bfloat16"
    #: Options of the Triton step (triton_llama.py `TritonLlamaStep`) for this precision: programmatic dependent
    #: launch where the GPU has it (Hopper+), the two-stage argmax.
    step_options: ClassVar[dict[str, Any]] = {"pdl": None, "argmax": "triton"}
    recipe = "2"

    def platform_availability(self) -> Availability:
        from siliconlab.units.cuda import cuda_availability

        return cuda_availability()

    def _dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype_name)

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        model.model.to(self._dtype()).save_pretrained(out_dir, safe_serialization=True)
        return Conversion(
            graph={
                "format": f"safetensors ({self.precision})",
                "prefill": "HF forward, StaticCache",
                "decode": step_kind(model.model),
                "graph": "one CUDA graph per batch size",
            }
        )

    def load(self, artifact_dir: Path, threads: int) -> GraphDecoderRunner:
        import torch
        from transformers import AutoConfig

        from siliconlab.models.generative import _factory, context_length
        from siliconlab.units.torch.cuda_generate import CudaGraphGenerator

        torch.set_num_threads(threads)
        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        model = (
            _factory(config)
            .from_pretrained(artifact_dir, dtype=self._dtype(), use_safetensors=True, trust_remote_code=False)
            .eval()
        )
        max_len = min(context_length(config), MAX_LEN)
        triton = step_kind(model).startswith("Triton")
        generator = CudaGraphGenerator(model, dtype=self._dtype(), max_batch=MAX_BATCH, max_len=max_len,
                                       fuse="triton" if triton else False,
                                       step_options=dict(self.step_options) if triton else None)  # fmt: skip
        return GraphDecoderRunner(generator, max_len)


def step_kind(model: Any) -> str:
    """Which decode step a model gets: the Triton Llama step where it applies, else the HF forward, captured."""
    from siliconlab.units.torch.triton_llama import triton_supported

    why = triton_supported(model)
    return "Triton Llama step, CUDA graph" if why is None else f"HF forward, CUDA graph ({why})"


class TorchCudaBf16Decoder(_TorchCudaDecoder):
    """bf16 weights, K/V cache and GEMV inputs; the residual stream and logits in fp32 (same speed; on SmolLM2
    argmax agreement 98.6 -> 99.3 %). SmolLM2 still misses the 0.999 logit-cosine gate in bf16 (worst step 0.997;
    HF's own bf16 model 0.996, benchmarks/gpu/NOTES.md session 5), so `unit="best"` tries fp16 first."""

    name = "torch-cuda-bf16"
    precision = "bf16"
    dtype_name = "bfloat16"
    recipe = "3"
    step_options = {"residual": "fp32", "pdl": None, "argmax": "triton"}
    agreement_min = HALF_AGREEMENT_MIN
    cosine_min = HALF_COSINE_MIN
    exact_free_run = False


class TorchCudaFp16Decoder(_TorchCudaDecoder):
    name = "torch-cuda-fp16"
    precision = "fp16"
    dtype_name = "float16"
    agreement_min = HALF_AGREEMENT_MIN
    cosine_min = HALF_COSINE_MIN
    exact_free_run = False


class TorchCudaFp32Decoder(_TorchCudaDecoder):
    """fp32: the check that graph, cache and kernels are exact (100 % agreement, identical free run)."""

    name = "torch-cuda-fp32"
    precision = "fp32"
    dtype_name = "float32"
