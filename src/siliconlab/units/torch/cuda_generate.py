"""Greedy decoding of Hugging Face causal LMs with a static KV cache and the decode step replayed as a CUDA graph.

Why: at batch 1 a small decoder (SmolLM2-135M: 30 layers) launches ~1,500 small kernels per token. Launched
from Python that costs tens of milliseconds (HF `generate` on the lent H100: 25-47 tokens/s) while the weights
need ~0.1 ms of memory traffic. Capturing the whole fixed-shape step (forward, greedy argmax, bookkeeping) once
and replaying it per token leaves only GPU time (~300 tokens/s); `compile=` lets Inductor fuse the step's small
kernels before the capture, and `fuse=True` merges Llama's projections (up to 1,085 tokens/s at batch 1 and
6,860 at batch 8 there: benchmarks/gpu/NOTES.md, session 4).

`StaticCacheDecoder` (static_cache.py) is the step logic on any device, eager; `CudaGraphGenerator` adds the
capture. torch and transformers are imported lazily, so importing this module is light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siliconlab.errors import SiliconlabError
from siliconlab.units.torch.static_cache import CacheSlot, StaticCacheDecoder

if TYPE_CHECKING:
    import torch

    from siliconlab.units.base import Availability

#: `compile=True` means this Inductor mode: autotuned GEMMs, coordinate-descent-tuned Triton kernels (which also
#: turns batch-1 matmuls into fusable reductions), and no Inductor CUDA graphs: we capture our own.
DEFAULT_COMPILE_MODE = "max-autotune-no-cudagraphs"
#: Replays before capture: lets cuBLAS/Inductor pick and load their kernels outside the graph.
WARMUP_STEPS = 3


def availability() -> Availability:
    """Yes when torch sees a CUDA device, else the reason (for the unit that wraps `CudaGraphGenerator`)."""
    from siliconlab.units.cuda import cuda_availability

    return cuda_availability()


class CudaGraphGenerator(StaticCacheDecoder):
    """`StaticCacheDecoder` on a CUDA device with each batch size's decode step captured as one CUDA graph.

    `compile=True` (Inductor mode `max-autotune-no-cudagraphs`) or a mode name compiles the step before the
    capture. `fuse=True` (Llama-family models) decodes with `FusedLlamaStep` instead of the HF forward: one QKV
    and one gate-up GEMV per layer (`fuse="reduce"` also writes attention as fusable reductions);
    `fuse="triton"` with `TritonLlamaStep` (5 Triton kernels per layer, triton_llama.py).
    Compilation and capture happen on first use of a batch size (inside the first `prefill`/`generate` of that
    size), not in `__init__`. Raises `SiliconlabError` without a CUDA device.
    """

    def __init__(
        self,
        model: Any,
        *,
        dtype: torch.dtype | None = None,
        max_batch: int = 1,
        max_len: int = 2048,
        compile: bool | str = False,
        fuse: bool | str = False,
        step_options: dict[str, Any] | None = None,
    ) -> None:
        import torch

        if not torch.cuda.is_available():
            why = availability().reason or "torch.cuda.is_available() is False"
            raise SiliconlabError(f"CudaGraphGenerator needs a CUDA device: {why}")
        dtype = dtype or torch.bfloat16
        super().__init__(model, dtype=dtype, device="cuda", max_batch=max_batch, max_len=max_len, fuse=fuse,
                         step_options=step_options)  # fmt: skip
        self.compile_mode = (DEFAULT_COMPILE_MODE if compile is True else compile) or None
        if self.compile_mode:
            self._step_fn = torch.compile(self._step, mode=self.compile_mode, dynamic=False)

    def _new_slot(self, batch: int, padded: bool) -> CacheSlot:
        slot = super()._new_slot(batch, padded)
        self._capture(slot)
        return slot

    def _capture(self, slot: CacheSlot) -> None:
        """Warm the step up on a side stream, then capture one step into a CUDA graph.

        One eager forward first allocates the cache's tensors (outside any compiled region, so they keep static
        addresses). Each warm-up step starts from an emptied cache, so nothing is written past slot 0; the
        warm-up compiles the step and lets cuBLAS/Triton autotune and load kernels before the capture. The next
        `prefill` rewinds the cache, so none of this leaves a trace in a generation."""
        import torch

        def step() -> torch.Tensor:
            return self._step_fn(slot.tok, slot.pos, slot.mask, slot.cache, slot.hist, slot.n, slot.write)

        with torch.no_grad():
            if slot.mask is not None:
                slot.mask.fill_(1)
            self.model(
                input_ids=slot.tok,
                attention_mask=slot.mask,
                position_ids=slot.pos,
                past_key_values=slot.cache,
                use_cache=True,
            )
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self._reset_slot(slot)
                    step()
            torch.cuda.current_stream().wait_stream(side)
            self._reset_slot(slot)
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                slot.static_logits = step()
            torch.cuda.synchronize()
        slot.graph = graph

    def _reset_slot(self, slot: CacheSlot) -> None:
        self._rewind(slot.cache)
        slot.tok.zero_()
        slot.pos.zero_()
        slot.n.zero_()
        slot.write.zero_()

    def _run_step(self, slot: CacheSlot) -> torch.Tensor:
        slot.graph.replay()
        assert slot.static_logits is not None  # set by the capture, before any replay
        slot.logits = slot.static_logits
        return slot.logits
