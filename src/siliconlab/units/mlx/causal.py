"""Causal LMs in MLX with a KV cache, mlx-lm style: the Llama family and GPT-2, from Hugging Face safetensors.

Module names mirror transformers' LlamaForCausalLM / GPT2LMHeadModel so the safetensors load key for key
(GPT-2's Conv1D weights are stored (in, out) and are used as `x @ W`). Attention is
mx.fast.scaled_dot_product_attention (grouped-query heads are not tiled; its "causal" mask is lower-right
aligned, so one mask serves a prefill and a step over a past). RoPE is mx.fast.rope in Hugging Face's
rotate-half layout (traditional=False). The cache preallocates in chunks of 256 positions and writes each
step into its slice, as mlx-lm's KVCache does, so a decode step does not copy the whole past.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from siliconlab.units.mlx.weights import load_safetensors

CHUNK = 256


class KVCache:
    """One layer's keys/values [batch, kv_heads, capacity, head_dim]; `offset` positions are filled."""

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        batch, heads, steps, dim = keys.shape
        if self.keys is None or self.offset + steps > self.keys.shape[2]:
            grow = ((steps + CHUNK - 1) // CHUNK) * CHUNK
            fresh_k = mx.zeros((batch, heads, grow, dim), keys.dtype)
            fresh_v = mx.zeros((batch, heads, grow, values.shape[3]), values.dtype)
            if self.keys is None:
                self.keys, self.values = fresh_k, fresh_v
            else:
                used = slice(0, self.offset)
                self.keys = mx.concatenate([self.keys[..., used, :], fresh_k], axis=2)
                self.values = mx.concatenate([self.values[..., used, :], fresh_v], axis=2)  # type: ignore[index]
        end = self.offset + steps
        self.keys[..., self.offset : end, :] = keys
        self.values[..., self.offset : end, :] = values  # type: ignore[index]
        self.offset = end
        return self.keys[..., :end, :], self.values[..., :end, :]  # type: ignore[index]

    def state(self) -> list[mx.array]:
        return [a for a in (self.keys, self.values) if a is not None]


def _mask(steps: int) -> str | None:
    return "causal" if steps > 1 else None


# --- Llama family -----------------------------------------------------------------------------------------------


class LlamaAttention(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        hidden, self.heads = config["hidden_size"], config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.head_dim = config.get("head_dim") or hidden // self.heads
        self.rope_base = float(_rope_theta(config))
        bias = bool(config.get("attention_bias", False))
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=bias)

    def __call__(self, x: mx.array, cache: KVCache) -> mx.array:
        batch, steps, _ = x.shape
        q = self.q_proj(x).reshape(batch, steps, self.heads, self.head_dim).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(batch, steps, self.kv_heads, self.head_dim).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(batch, steps, self.kv_heads, self.head_dim).transpose(0, 2, 1, 3)
        q, k = (mx.fast.rope(x, self.head_dim, traditional=False, base=self.rope_base, scale=1.0, offset=cache.offset)
                for x in (q, k))  # fmt: skip
        k, v = cache.update(k, v)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(self.head_dim), mask=_mask(steps))
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(batch, steps, -1))


class LlamaMLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int, bias: bool):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.up_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        hidden, eps = config["hidden_size"], config.get("rms_norm_eps", 1e-6)
        self.self_attn = LlamaAttention(config)
        self.mlp = LlamaMLP(hidden, config["intermediate_size"], bool(config.get("mlp_bias", False)))
        self.input_layernorm = nn.RMSNorm(hidden, eps=eps)
        self.post_attention_layernorm = nn.RMSNorm(hidden, eps=eps)

    def __call__(self, x: mx.array, cache: KVCache) -> mx.array:
        x = x + self.self_attn(self.input_layernorm(x), cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.embed_tokens = nn.Embedding(config["vocab_size"], config["hidden_size"])
        self.layers = [LlamaLayer(config) for _ in range(config["num_hidden_layers"])]
        self.norm = nn.RMSNorm(config["hidden_size"], eps=config.get("rms_norm_eps", 1e-6))


class LlamaForCausalLM(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.model = LlamaModel(config)
        self.tied = bool(config.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(config["hidden_size"], config["vocab_size"], bias=False)

    def __call__(self, ids: mx.array, caches: list[KVCache]) -> mx.array:
        """Logits of the last position [batch, vocab]."""
        x = self.model.embed_tokens(ids)
        for layer, cache in zip(self.model.layers, caches):
            x = layer(x, cache)
        last = self.model.norm(x[:, -1:, :])[:, 0, :]
        return self.model.embed_tokens.as_linear(last) if self.tied else self.lm_head(last)

    def layer_count(self) -> int:
        return len(self.model.layers)


def _rope_theta(config: dict[str, Any]) -> float:
    params = config.get("rope_parameters") or {}
    return float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)


# --- GPT-2 ------------------------------------------------------------------------------------------------------


class Conv1D(nn.Module):
    """transformers' GPT-2 Conv1D: weight stored (in, out)."""

    def __init__(self, dims_in: int, dims_out: int):
        super().__init__()
        self.weight = mx.zeros((dims_in, dims_out))
        self.bias = mx.zeros((dims_out,))

    def __call__(self, x: mx.array) -> mx.array:
        return mx.addmm(self.bias, x, self.weight)


class GPT2Attention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.c_attn = Conv1D(hidden, 3 * hidden)
        self.c_proj = Conv1D(hidden, hidden)

    def __call__(self, x: mx.array, cache: KVCache) -> mx.array:
        batch, steps, hidden = x.shape
        q, k, v = (
            part.reshape(batch, steps, self.heads, self.head_dim).transpose(0, 2, 1, 3)
            for part in mx.split(self.c_attn(x), 3, axis=-1)
        )
        k, v = cache.update(k, v)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(self.head_dim), mask=_mask(steps))
        return self.c_proj(out.transpose(0, 2, 1, 3).reshape(batch, steps, hidden))


class GPT2MLP(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.c_fc = Conv1D(hidden, inner)
        self.c_proj = Conv1D(inner, hidden)

    def __call__(self, x: mx.array) -> mx.array:
        return self.c_proj(nn.gelu_approx(self.c_fc(x)))  # GPT-2's "gelu_new" is the tanh approximation


class GPT2Block(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        hidden, eps = config["n_embd"], config.get("layer_norm_epsilon", 1e-5)
        self.ln_1 = nn.LayerNorm(hidden, eps=eps)
        self.attn = GPT2Attention(hidden, config["n_head"])
        self.ln_2 = nn.LayerNorm(hidden, eps=eps)
        self.mlp = GPT2MLP(hidden, config.get("n_inner") or 4 * hidden)

    def __call__(self, x: mx.array, cache: KVCache) -> mx.array:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.wte = nn.Embedding(config["vocab_size"], config["n_embd"])
        self.wpe = nn.Embedding(config["n_positions"], config["n_embd"])
        self.h = [GPT2Block(config) for _ in range(config["n_layer"])]
        self.ln_f = nn.LayerNorm(config["n_embd"], eps=config.get("layer_norm_epsilon", 1e-5))


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.transformer = GPT2Model(config)

    def __call__(self, ids: mx.array, caches: list[KVCache]) -> mx.array:
        start = caches[0].offset
        positions = mx.arange(start, start + ids.shape[1])[None, :]
        x = self.transformer.wte(ids) + self.transformer.wpe(positions)
        for block, cache in zip(self.transformer.h, caches):
            x = block(x, cache)
        return self.transformer.wte.as_linear(self.transformer.ln_f(x[:, -1, :]))  # GPT-2 ties its LM head

    def layer_count(self) -> int:
        return len(self.transformer.h)


# --- building and loading ---------------------------------------------------------------------------------------

ARCHITECTURES = {"llama": LlamaForCausalLM, "gpt2": GPT2LMHeadModel}


def check_supported(config: dict[str, Any]) -> None:
    """Raise ValueError naming what this MLX port does not implement (the unit turns it into a failed conversion)."""
    kind = config.get("model_type")
    if kind not in ARCHITECTURES:
        raise ValueError(f"MLX decoder supports {', '.join(ARCHITECTURES)} models, not '{kind}'")
    if kind == "llama":
        params = config.get("rope_parameters") or config.get("rope_scaling") or {}
        rope_type = params.get("rope_type") or params.get("type") or "default"
        if rope_type != "default":
            raise ValueError(f"MLX decoder implements plain RoPE, not rope type '{rope_type}'")
        if config.get("hidden_act", "silu") != "silu":
            raise ValueError(f"MLX Llama implements SiLU, not '{config.get('hidden_act')}'")
    if kind == "gpt2" and config.get("activation_function", "gelu_new") != "gelu_new":
        raise ValueError(f"MLX GPT-2 implements gelu_new, not '{config.get('activation_function')}'")
    if kind == "gpt2" and (config.get("scale_attn_by_inverse_layer_idx") or not config.get("scale_attn_weights", True)):
        raise ValueError("MLX GPT-2 implements attention scaled by 1/sqrt(head_dim) only")


def build(config: dict[str, Any], folder: Path) -> nn.Module:
    """The model for `config` with the folder's safetensors loaded (every parameter must be present)."""
    check_supported(config)
    model = ARCHITECTURES[config["model_type"]](config)
    weights: dict[str, mx.array] = {}
    for path in sorted(folder.glob("*.safetensors")):
        weights.update(load_safetensors(path))
    if config["model_type"] == "gpt2":  # transformers keeps GPT-2's causal-mask buffers out of newer checkpoints
        weights = {key: value for key, value in weights.items() if not key.endswith((".attn.bias", ".masked_bias"))
                   and key != "lm_head.weight"}  # fmt: skip
    elif model.tied:
        weights.pop("lm_head.weight", None)
    model.load_weights(list(weights.items()), strict=True)
    model.eval()
    mx.eval(model.parameters())
    return model
