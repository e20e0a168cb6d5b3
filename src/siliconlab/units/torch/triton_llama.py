"""A Llama decode step of ~5 Triton kernels per layer (units/torch/decode_kernels.py), on the HF `StaticCache`.

Why: the fused torch step (fused_llama.py) still launches ~41 kernels per layer, ~11 once Inductor compiles it,
and at batch 1 each costs ~2.5 us inside a CUDA graph whatever its size. This step runs, per layer,
RMSNorm+QKV, RoPE+cache write+attention, O projection+residual, RMSNorm+gate-up, SiLU*up+down+residual: 150
kernels for SmolLM2's 30 layers plus embedding, final norm+LM head, argmax and one bookkeeping kernel. No
Inductor, so no autotuning run to run (the instability NOTES.md session 4 measured) and no compile wait.

It reuses `FusedLlamaStep`'s concatenated weights (the HF module keeps views into them for the prefill) and
the same cache slots, so prefill (HF forward) and decode (this) share one `StaticCache`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siliconlab.units.torch.fused_llama import FusedLlamaStep, fusable

if TYPE_CHECKING:
    import torch

#: Model dtypes the kernels are written for.
DTYPES = ("torch.bfloat16", "torch.float16", "torch.float32")


def triton_supported(model: Any) -> str | None:
    """None when the Triton step can run `model`, else why not (the caller then uses the fused torch step)."""
    import importlib.util

    why = fusable(model)
    if why is not None:
        return why
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    from siliconlab.units.torch.decode_kernels import MAX_K

    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    if head_dim & (head_dim - 1):
        return f"head_dim {head_dim} is not a power of two"
    if max(config.hidden_size, config.intermediate_size) > MAX_K:
        return f"hidden/intermediate size above {MAX_K} (one register tile per weight row block)"
    dtype = str(next(model.parameters()).dtype)
    if dtype not in DTYPES:
        return f"dtype {dtype} is not one of {', '.join(DTYPES)}"
    return None


class TritonLlamaStep(FusedLlamaStep):
    """`__call__(tok, pos, mask, cache, write)` -> logits [B, vocab]; `advance` does the greedy bookkeeping.

    `max_len` sizes the RoPE tables (positions 0..max_len-1). `block_n` overrides the GEMV rows per program;
    `lm_head="torch"` runs the final norm + LM head with torch ops (cuBLAS) instead of the Triton GEMV.
    `residual="fp32"` keeps the residual stream (576 values per row) and the logits in fp32 instead of rounding
    them to the model dtype after every layer as HF does: weights, K/V cache and GEMV inputs stay in the model
    dtype, so the step reads the same bytes, but 30 layers of bf16 rounding no longer add up in the hidden state.
    `pdl=True` (None: on for Hopper+ with CUDA >= 12.3) launches each kernel before its predecessor ends (programmatic
    dependent launch): it loads its weight tile, then waits. `argmax="triton"` picks the token in two small
    kernels instead of torch's single-program reduction."""

    advances = True

    def __init__(
        self, model: Any, max_len: int, block_n: int | None = None, lm_head: str = "triton", residual: str = "model",
        pdl: bool | None = False, argmax: str = "torch",
    ) -> None:  # fmt: skip
        import torch

        why = triton_supported(model)
        if why is not None:
            raise ValueError(f"cannot run the Triton step: {why}")
        super().__init__(model)
        from siliconlab.units.torch import decode_kernels

        self.kernels = decode_kernels
        if residual not in ("model", "fp32") or lm_head not in ("triton", "torch"):
            raise ValueError(f"residual must be 'model' or 'fp32', lm_head 'triton' or 'torch': {residual}, {lm_head}")
        if argmax not in ("torch", "triton"):
            raise ValueError(f"argmax must be 'torch' or 'triton', got {argmax!r}")
        self.block_n, self.lm_head_mode, self.residual_fp32 = block_n, lm_head, residual == "fp32"
        self.argmax = argmax
        self.pdl = pdl_supported(self.embed.device) if pdl is None else pdl
        dtype = self.embed.dtype
        # HF's rotary arithmetic for every position at once: fp32 angles, cos/sin, scaled, cast to the dtype.
        positions = torch.arange(max_len, device=self.embed.device, dtype=torch.float32)
        freqs = positions[:, None] * self.inv_freq.float()[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * self.rope_scale).to(dtype).contiguous()
        self.sin = (emb.sin() * self.rope_scale).to(dtype).contiguous()
        self.nq = self.heads * self.head_dim
        self.nqkv = self.nq + 2 * self.kv_heads * self.head_dim

    def __call__(
        self, tok: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None, cache: Any, write: torch.Tensor
    ) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        k, batch = self.kernels, tok.shape[0]
        x = F.embedding(tok.view(batch), self.embed)  # [B, H]: the residual stream, updated in place below
        dtype = x.dtype
        if self.residual_fp32:
            x = x.float()  # the kernels round each GEMV's output to its out tensor's dtype: fp32 here, none
        qkv = torch.empty((batch, self.nqkv), dtype=dtype, device=x.device)
        attn = torch.empty((batch, self.nq), dtype=dtype, device=x.device)
        inter = self.layers[0]["gate_up"].shape[0]
        gate_up = torch.empty((batch, inter), dtype=dtype, device=x.device)
        bn, pdl = self.block_n, self.pdl
        for index, w in enumerate(self.layers):
            layer = cache.layers[index]
            k.gemv(x, w["qkv"], qkv, prologue=1, norm=w["ln1"][0], eps=w["ln1"][1], block_n=bn, pdl=pdl)
            k.attention(qkv, layer.keys, layer.values, attn, self.cos, self.sin, pos, write, mask,
                        self.heads, self.kv_heads, self.head_dim, w["scaling"], pdl=pdl)  # fmt: skip
            k.gemv(attn, w["o"], x, residual=True, block_n=bn, pdl=pdl)
            k.gemv(x, w["gate_up"], gate_up, prologue=1, norm=w["ln2"][0], eps=w["ln2"][1], block_n=bn, pdl=pdl)
            k.gemv(gate_up, w["down"], x, prologue=2, residual=True, block_n=bn, pdl=pdl)
        if self.lm_head_mode == "torch":
            from siliconlab.units.torch.fused_llama import _rms_norm

            return F.linear(_rms_norm(x.to(dtype), *self.final_norm), self.lm_head)
        logits = torch.empty((batch, self.lm_head.shape[0]), dtype=x.dtype, device=x.device)
        weight, eps = self.final_norm
        return k.gemv(x, self.lm_head, logits, prologue=1, norm=weight, eps=eps, block_n=bn, pdl=pdl)

    def advance(self, logits: Any, tok: Any, pos: Any, hist: Any, n: Any, write: Any) -> None:
        """Greedy pick and bookkeeping: argmax (torch), then history/token/position/counters in one kernel."""
        import torch

        if self.argmax == "triton":
            self.kernels.argmax_advance(logits, tok, pos, hist, n, write, pdl=self.pdl)
            return
        nxt = torch.argmax(logits, dim=-1)
        self.kernels.advance(nxt, tok, pos, hist, n, write, pdl=self.pdl)


def pdl_supported(device: Any) -> bool:
    """Programmatic dependent launch needs a Hopper or newer GPU and CUDA 12.3+."""
    import torch

    if getattr(device, "type", str(device)) != "cuda" or not torch.version.cuda:
        return False
    major, minor = (int(part) for part in torch.version.cuda.split(".")[:2])
    return torch.cuda.get_device_capability(device) >= (9, 0) and (major, minor) >= (12, 3)
