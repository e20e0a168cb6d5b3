"""A Llama-family decode step with fused projections, reading and writing the Hugging Face `StaticCache`.

Why: at batch 1 the step is bound by the number of kernels, not by bytes. HF's Llama layer launches separate
q/k/v and gate/up GEMVs; here each layer runs one QKV GEMV and one gate-up GEMV on concatenated weights. The
HF module keeps working unchanged (for the prefill): its q/k/v and gate/up weights become views into the
concatenated tensors, so no weight is stored twice. Everything else follows HF's arithmetic (RMSNorm in fp32,
RoPE tables in fp32 cast to the model dtype, SDPA with a boolean mask), so greedy tokens match HF's.

Only for one token per row (decode); the prompt goes through the HF model, which fills the same cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: "sdpa" (default): torch's fused attention with a boolean mask (on an H100, cuDNN's kernel: ~7 us per layer at
#: one query over 512 slots). "reduce": attention written as plain fp32 reductions (scores, softmax, weighted sum)
#: that Inductor fuses with the query's RoPE and the mask into 3 small kernels; measured slower on the H100 (3
#: kernels of 1.6-3.2 us beat cuDNN's one, but at batch 8 the step took 1.53 vs 1.17 ms), kept for comparison.
ATTENTION = ("sdpa", "reduce")
#: Rotary variants whose tables depend only on the position (inv_freq fixed at init).
_STATIC_ROPE = ("default", "linear", "llama3")


def fusable(model: Any) -> str | None:
    """None when `model` is a plain Llama-style causal LM this step reproduces exactly, else why not."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "llama":
        return f"model_type {getattr(config, 'model_type', None)!r} is not 'llama'"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "projection biases are not supported"
    if (act := getattr(config, "hidden_act", None)) != "silu":
        return f"hidden_act {act!r} is not 'silu'"
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rotary is None or getattr(rotary, "rope_type", "default") not in _STATIC_ROPE:
        return f"rotary embedding type {getattr(rotary, 'rope_type', None)!r} is not supported"
    return None


def _concat_shared(modules: list[Any]) -> torch.Tensor:
    """One [sum(out), in] weight; each module's weight becomes a view into it (same values, no copy kept)."""
    import torch

    fused = torch.cat([m.weight.detach() for m in modules], dim=0).contiguous()
    start = 0
    for module in modules:
        rows = module.weight.shape[0]
        module.weight = torch.nn.Parameter(fused[start : start + rows], requires_grad=False)
        start += rows
    return fused


class FusedLlamaStep:
    """Decode step for `LlamaForCausalLM`-style models: `__call__` returns logits [B, vocab] for one token/row."""

    def __init__(self, model: Any, attention: str = "sdpa") -> None:
        why = fusable(model)
        if why is not None:
            raise ValueError(f"cannot fuse this model: {why}")
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
        self.attention = attention
        config, inner = model.config, model.model
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.embed = inner.embed_tokens.weight
        self.final_norm = (inner.norm.weight, _eps(inner.norm))
        self.lm_head = model.lm_head.weight
        self.inv_freq = inner.rotary_emb.inv_freq
        self.rope_scale = float(getattr(inner.rotary_emb, "attention_scaling", 1.0))
        self.layers = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                {
                    "ln1": (layer.input_layernorm.weight, _eps(layer.input_layernorm)),
                    "qkv": _concat_shared([attn.q_proj, attn.k_proj, attn.v_proj]),
                    "o": attn.o_proj.weight,
                    "ln2": (layer.post_attention_layernorm.weight, _eps(layer.post_attention_layernorm)),
                    "gate_up": _concat_shared([mlp.gate_proj, mlp.up_proj]),
                    "down": mlp.down_proj.weight,
                    "scaling": float(getattr(attn, "scaling", self.head_dim**-0.5)),
                }
            )

    def __call__(
        self, tok: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None, cache: Any, write: torch.Tensor
    ) -> torch.Tensor:
        """tok, pos [B, 1]; mask [B, max_len] (1 = real) or None; write [1]: the cache slot this token fills."""
        import torch
        import torch.nn.functional as F

        batch = tok.shape[0]
        x = F.embedding(tok, self.embed)  # [B, 1, H]
        cos, sin = self._rope(pos, x.dtype)
        first_keys = cache.layers[0].keys
        slots = torch.arange(first_keys.shape[2], device=tok.device)
        visible = (slots <= write).view(1, 1, 1, -1)
        if mask is not None:
            visible = visible & mask.bool().view(batch, 1, 1, -1)
        nq, nkv, d = self.heads * self.head_dim, self.kv_heads * self.head_dim, self.head_dim
        for index, w in enumerate(self.layers):
            h = _rms_norm(x, *w["ln1"])
            q, k, v = F.linear(h, w["qkv"]).split([nq, nkv, nkv], dim=-1)
            q = q.view(batch, 1, self.heads, d).transpose(1, 2)
            k = k.view(batch, 1, self.kv_heads, d).transpose(1, 2)
            v = v.view(batch, 1, self.kv_heads, d).transpose(1, 2)
            q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
            layer = cache.layers[index]
            layer.keys.index_copy_(2, write, k)
            layer.values.index_copy_(2, write, v)
            if self.attention == "sdpa":  # HF's own choice: same kernel, same mask
                gqa = self.kv_heads != self.heads
                a = F.scaled_dot_product_attention(
                    q, layer.keys, layer.values, attn_mask=visible, scale=w["scaling"], enable_gqa=gqa
                )
            else:
                a = _attend(q, layer.keys, layer.values, visible, w["scaling"])
            x = x + F.linear(a.transpose(1, 2).reshape(batch, 1, nq), w["o"])
            h = _rms_norm(x, *w["ln2"])
            gate, up = F.linear(h, w["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, w["down"])
        return F.linear(_rms_norm(x, *self.final_norm), self.lm_head)[:, -1, :]

    def _rope(self, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [B, 1, 1, head_dim] as HF computes them: fp32 angles, scaled, cast to the model dtype."""
        import torch

        freqs = pos.float().unsqueeze(-1) * self.inv_freq.float()  # [B, 1, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * self.rope_scale, emb.sin() * self.rope_scale
        return cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)


def _eps(norm: Any) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    import torch

    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _attend(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, visible: torch.Tensor, scale: float
) -> torch.Tensor:
    """Attention of one query per row over the whole static cache: q [B, H, 1, D], keys/values [B, KV, L, D],
    visible [B or 1, 1, 1, L]. Query heads are grouped as HF's repeat_kv does (head h reads KV head h // (H/KV))."""
    import torch

    batch, heads, _, dim = q.shape
    kv_heads = keys.shape[1]
    qg = q.view(batch, kv_heads, heads // kv_heads, 1, dim).float()  # [B, KV, G, 1, D]
    scores = (qg * keys.unsqueeze(2).float()).sum(-1) * scale  # [B, KV, G, L]
    scores = scores.masked_fill(~visible.view(visible.shape[0], 1, 1, -1), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = (probs.unsqueeze(-1) * values.unsqueeze(2).float()).sum(3)  # [B, KV, G, D]
    return out.to(q.dtype).view(batch, heads, 1, dim)
