"""`StaticCacheDecoder`: greedy decoding of Hugging Face causal LMs against a preallocated static KV cache, eager,
on any device.

It is the step logic of the CUDA-graph generator (cuda_generate.py): fixed shapes and device-side counters only
(no `.item()`, no host branching between tokens), so that the same code can be captured as a CUDA graph there
and tested here without a GPU. Works for any HF causal LM whose forward takes `past_key_values=StaticCache` and
`position_ids` (Llama family, GPT-2, ...). torch and transformers are imported lazily, so importing this module
is light.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from siliconlab.errors import UsageError

if TYPE_CHECKING:
    import torch


@dataclass
class CacheSlot:
    """The static state of one batch size: every tensor a captured step reads or writes keeps its address."""

    cache: Any  #: transformers.StaticCache
    tok: torch.Tensor  #: [B, 1] the token the next step consumes
    pos: torch.Tensor  #: [B, 1] its position id (rows differ under left padding)
    mask: torch.Tensor | None  #: [B, max_len] 1 = real slot; None when no row is padded
    hist: torch.Tensor  #: [B, max_len] generated tokens, written on the device
    n: torch.Tensor  #: [1] how many tokens `hist` holds
    write: torch.Tensor  #: [1] the cache slot the next token fills (read by the fused step)
    logits: torch.Tensor | None = None  #: [B, vocab] the last prefill's or step's logits
    graph: Any = None  #: torch.cuda.CUDAGraph once captured
    static_logits: torch.Tensor | None = None  #: the graph's output: rewritten in place by every replay


class StaticCacheDecoder:
    """Prefill + one-token greedy steps against a preallocated `StaticCache`, run eagerly on any device.

    `model` is moved/cast in place (`dtype=None` keeps its dtype). One cache of `max_len` slots is allocated per
    batch size on first use. The decode step takes its inputs from static buffers and writes its outputs back
    into them, so consecutive steps need no host involvement.
    """

    def __init__(
        self,
        model: Any,
        *,
        dtype: torch.dtype | None = None,
        device: Any = None,
        max_batch: int = 1,
        max_len: int = 2048,
        fuse: bool | str = False,
        step_options: dict[str, Any] | None = None,
    ) -> None:
        import torch

        if max_batch < 1 or max_len < 2:
            raise UsageError(f"max_batch must be >= 1 and max_len >= 2, got {max_batch} and {max_len}")
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if limit is not None and max_len > limit:
            raise UsageError(f"max_len {max_len} exceeds the model's {limit} positions")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.dtype = next(self.model.parameters()).dtype
        self.max_batch, self.max_len = max_batch, max_len
        self._slots: dict[tuple[int, bool], CacheSlot] = {}
        self._step_fn: Callable[..., torch.Tensor] = self._step
        self._fused: Any = None
        if fuse:
            from siliconlab.units.torch.fused_llama import FusedLlamaStep, fusable

            why = fusable(self.model)
            if why is not None:
                raise UsageError(f"fuse=True: {why}")
            if fuse == "triton":
                from siliconlab.units.torch.triton_llama import TritonLlamaStep, triton_supported

                why = triton_supported(self.model)
                if why is not None:
                    raise UsageError(f"fuse='triton': {why}")
                self._fused = TritonLlamaStep(self.model, max_len, **(step_options or {}))
            else:
                self._fused = FusedLlamaStep(self.model, **({"attention": fuse} if isinstance(fuse, str) else {}))
        #: Seconds from `prefill` being called to its first token being ready on the device (last call).
        self.ttft: float | None = None
        #: Seconds the last `generate` spent after its first token, and the tokens per row it made in them.
        self.decode_seconds: float | None = None
        self.decode_steps: int = 0
        self.last_batch: int = 0
        self._current: CacheSlot | None = None

    @property
    def tokens_per_second(self) -> float | None:
        """Decode rate of the last `generate`: tokens after the first, all rows, over `decode_seconds`."""
        if not self.decode_seconds or self.decode_steps < 1:
            return None
        return self.last_batch * self.decode_steps / self.decode_seconds

    # -- state -------------------------------------------------------------------------------------------------
    def _new_slot(self, batch: int, padded: bool) -> CacheSlot:
        import torch
        from transformers import StaticCache

        def longs(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.long, device=self.device)

        cache = StaticCache(config=self.model.config, max_cache_len=self.max_len)
        mask = longs(batch, self.max_len) if padded else None
        return CacheSlot(cache, longs(batch, 1), longs(batch, 1), mask, longs(batch, self.max_len), longs(1), longs(1))

    def _slot(self, batch: int, padded: bool) -> CacheSlot:
        key = (batch, padded)
        if key not in self._slots:
            self._slots[key] = self._new_slot(batch, padded)
        return self._slots[key]

    @staticmethod
    def _rewind(cache: Any) -> None:
        """Empty the cache by zeroing its length counters; stale keys/values lie past the causal horizon."""
        import torch

        for layer in getattr(cache, "layers", ()):
            counter = getattr(layer, "cumulative_length", None)
            if isinstance(counter, torch.Tensor):
                counter.zero_()
            elif counter is not None:
                cache.reset()
                return

    # -- the step ----------------------------------------------------------------------------------------------
    def _step(
        self,
        tok: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor | None,
        cache: Any,
        hist: torch.Tensor,
        n: torch.Tensor,
        write: torch.Tensor,
    ) -> torch.Tensor:
        """One token for every row: forward, greedy argmax, and the buffer updates — all on the device."""
        import torch

        if self._fused is not None:
            logits = self._fused(tok, pos, mask, cache, write)
            if getattr(self._fused, "advances", False):  # the Triton step: argmax + bookkeeping in 2 launches
                self._fused.advance(logits, tok, pos, hist, n, write)
                return logits
            write.add_(1)
        else:
            out = self.model(
                input_ids=tok, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True
            )
            logits = out.logits[:, -1, :]
        nxt = torch.argmax(logits, dim=-1, keepdim=True)
        hist.index_copy_(1, n, nxt)
        tok.copy_(nxt)
        pos.add_(1)
        n.add_(1)
        return logits

    def _run_step(self, slot: CacheSlot) -> torch.Tensor:
        """Advance one token (eagerly here; `CudaGraphGenerator` replays its graph instead)."""
        slot.logits = self._step_fn(slot.tok, slot.pos, slot.mask, slot.cache, slot.hist, slot.n, slot.write)
        return slot.logits

    # -- public API --------------------------------------------------------------------------------------------
    def _check_inputs(
        self, input_ids: Any, attention_mask: Any, new_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        ids = torch.as_tensor(input_ids, dtype=torch.long)
        if ids.ndim == 1:
            ids = ids.unsqueeze(0)
        if ids.ndim != 2 or ids.shape[1] < 1 or ids.shape[0] < 1:
            raise UsageError(f"input_ids must be [batch, seq] with seq >= 1, got shape {tuple(ids.shape)}")
        batch, seq = ids.shape
        if batch > self.max_batch:
            raise UsageError(f"batch {batch} exceeds max_batch {self.max_batch}")
        if seq + new_tokens > self.max_len:
            raise UsageError(f"prompt {seq} + {new_tokens} new tokens exceed max_len {self.max_len}")
        mask = None
        if attention_mask is not None:
            mask = torch.as_tensor(attention_mask, dtype=torch.long)
            if mask.numel() != ids.numel():
                raise UsageError(f"attention_mask has {mask.numel()} entries for input_ids of shape {tuple(ids.shape)}")
            mask = mask.reshape(ids.shape)
            if not bool(mask[:, -1].all()):
                raise UsageError("attention_mask: pad on the left (every row's last token must be real)")
            if bool(mask.all()):
                mask = None
        return ids.to(self.device), None if mask is None else mask.to(self.device)

    def prefill(self, input_ids: Any, attention_mask: Any = None, *, _reserve: int = 1) -> torch.Tensor:
        """Run the prompt through the model into an emptied cache; returns the first greedy token per row [B].

        Rows of different lengths are left-padded with `attention_mask` 0. Sets `ttft` (seconds, synchronized).
        """
        import torch

        start = time.perf_counter()
        ids, mask = self._check_inputs(input_ids, attention_mask, _reserve)
        batch, seq = ids.shape
        slot = self._slot(batch, mask is not None)
        with torch.no_grad():
            self._rewind(slot.cache)
            if mask is None:
                positions = torch.arange(seq, device=self.device).expand(batch, seq)
            else:
                assert slot.mask is not None
                slot.mask.fill_(1)
                slot.mask[:, :seq].copy_(mask)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(
                input_ids=ids,
                attention_mask=slot.mask,
                position_ids=positions,
                past_key_values=slot.cache,
                use_cache=True,
                logits_to_keep=1,
            )
            slot.logits = out.logits[:, -1, :]
            first = torch.argmax(slot.logits, dim=-1)
            slot.tok.copy_(first.unsqueeze(1))
            slot.pos.copy_(positions[:, -1:] + 1)
            slot.hist[:, 0].copy_(first)
            slot.n.fill_(1)
            slot.write.fill_(seq)
        self._synchronize()
        self.ttft = time.perf_counter() - start
        self._current = slot
        return first

    def generate(
        self,
        input_ids: Any,
        max_new_tokens: int,
        on_token: Callable[[torch.Tensor], Any] | None = None,
        *,
        attention_mask: Any = None,
        stream_every: int = 16,
        eos_token_id: int | None = None,
    ) -> torch.Tensor:
        """Greedy continuation: [B, n] new token ids on the CPU (n = max_new_tokens, or less after EOS).

        `on_token(chunk)` receives each new chunk as a CPU LongTensor [B, k]: the first token alone right after
        the prefill (time to first token), then every `stream_every` tokens — one host sync per chunk, none per
        token. With `eos_token_id` generation stops at the first chunk boundary where every row has produced it;
        a batch-1 result is cut after the EOS (in batches, tokens after a row's EOS are filler).
        """
        import torch

        if not 1 <= max_new_tokens <= self.max_len - 1:
            raise UsageError(f"max_new_tokens must be in 1..{self.max_len - 1}, got {max_new_tokens}")
        if stream_every < 1:
            raise UsageError(f"stream_every must be >= 1, got {stream_every}")
        self.prefill(input_ids, attention_mask, _reserve=max_new_tokens)
        slot = self._current
        assert slot is not None
        batch = slot.tok.shape[0]
        t_first = time.perf_counter()
        sent = 0
        done = torch.zeros(batch, dtype=torch.bool)
        if on_token is not None:
            sent = self._emit(slot, 0, 1, on_token, done, eos_token_id)
        made = 1
        with torch.no_grad():
            while made < max_new_tokens:
                self._run_step(slot)
                made += 1
                boundary = made - sent >= stream_every or made == max_new_tokens
                if boundary and (on_token is not None or eos_token_id is not None):
                    sent = self._emit(slot, sent, made, on_token, done, eos_token_id)
                    if eos_token_id is not None and bool(done.all()):
                        break
        tokens = slot.hist[:, :made].cpu()
        self.decode_seconds = time.perf_counter() - t_first
        self.decode_steps, self.last_batch = made - 1, batch
        if eos_token_id is not None and batch == 1:
            hits = (tokens[0] == eos_token_id).nonzero()
            if len(hits):
                tokens = tokens[:, : int(hits[0]) + 1]
        return tokens

    def _emit(
        self,
        slot: CacheSlot,
        start: int,
        stop: int,
        on_token: Callable[[torch.Tensor], Any] | None,
        done: torch.Tensor,
        eos_token_id: int | None,
    ) -> int:
        """Copy tokens [start, stop) to the host (one sync), hand them to the callback, note EOS rows."""
        if start >= stop:
            return start
        chunk = slot.hist[:, start:stop].cpu()
        if eos_token_id is not None:
            done |= (chunk == eos_token_id).any(dim=1)
        if on_token is not None:
            on_token(chunk)
        return stop

    def forced_logits(self, input_ids: Any, targets: Any, attention_mask: Any = None) -> torch.Tensor:
        """Teacher-forced logits [B, T, vocab] (float32, CPU): step t predicts targets[:, t] from the prompt and
        targets[:, :t]. Runs the same prefill and decode step as `generate` (the graph, on CUDA), so a parity
        check against a reference forward pass tests exactly the code that generates."""
        import torch

        forced = torch.as_tensor(targets, dtype=torch.long)
        forced = forced.unsqueeze(0) if forced.ndim == 1 else forced
        steps = forced.shape[1]
        self.prefill(input_ids, attention_mask, _reserve=steps)
        slot = self._current
        assert slot is not None and slot.logits is not None
        forced = forced.to(self.device)
        out = [slot.logits.float().clone()]
        with torch.no_grad():
            for t in range(steps - 1):
                slot.tok.copy_(forced[:, t : t + 1])
                out.append(self._run_step(slot).float().clone())
        return torch.stack(out, dim=1).cpu()

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
