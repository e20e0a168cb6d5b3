"""A BERT encoder restructured for the Apple Neural Engine, loading the same Hugging Face weights.

It follows the principles Apple published with ml-ane-transformers ("Deploying Transformers on the Apple
Neural Engine", 2022):

* **(B, C, 1, S) layout.** Activations are 4-D, channels second and the sequence last. The ANE stores tensors
  with the last axis contiguous and padded to 64 bytes; (B, S, C) with a small C wastes most of each row and
  forces transposes around every matmul.
* **1×1 Conv2d instead of Linear.** Every projection is a `Conv2d(C_in, C_out, 1)` on the (B, C, 1, S)
  tensor; a Linear weight (out, in) is the same tensor reshaped to (out, in, 1, 1).
* **Per-head chunked attention with einsum.** Q, K and V are split into one tensor per head and each head's
  scores are `einsum("bchq,bkhc->bkhq")`: no 5-D reshape/transpose of the whole Q/K/V, which the ANE handles
  badly; softmax runs over the key axis (dim 1).
* **ANE-friendly LayerNorm.** Normalisation over the channel axis (dim 1) of the 4-D tensor, written with
  mean/rsqrt so it maps onto ANE ops; epsilon at least 1e-7, because BERT's 1e-12 underflows to 0 in fp16.

The module takes the same inputs as `EncoderWithHead` — int token ids and an int attention mask, both
(B, S) — and returns the same outputs in the same (B, S, C) / (B, C) layout, so every CoreML package has one
documented interface whichever encoder is inside. Its fp32 parity with the original model is tested on
Linux (tests/units/test_coreml.py); that is the only way to verify it here, as CoreML prediction needs macOS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from siliconlab.models.base import HEADS, HfModule, Task
from siliconlab.units.coreml.fp16 import MASK_VALUE, pooled_unit_vector

#: fp16 cannot represent BERT's 1e-12; 1e-7 is what Apple's reference implementation uses.
MIN_FP16_EPS = 1e-7


def conv_from_linear(linear: nn.Linear) -> nn.Conv2d:
    conv = nn.Conv2d(linear.in_features, linear.out_features, kernel_size=1, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight[:, :, None, None])
        if linear.bias is not None and conv.bias is not None:  # the conv has a bias exactly when the linear has
            conv.bias.copy_(linear.bias)
    return conv


class LayerNormANE(nn.Module):
    """LayerNorm over the channel axis of a (B, C, 1, S) tensor."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = max(float(eps), MIN_FP16_EPS)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    @classmethod
    def from_layer_norm(cls, norm: nn.LayerNorm) -> LayerNormANE:
        module = cls(norm.normalized_shape[0], norm.eps)
        with torch.no_grad():
            module.weight.copy_(norm.weight)
            module.bias.copy_(norm.bias)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zero_mean = x - x.mean(dim=1, keepdim=True)
        denom = torch.rsqrt(zero_mean.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return zero_mean * denom * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class AttentionANE(nn.Module):
    def __init__(self, hf_attention: HfModule, num_heads: int):
        super().__init__()
        self_attn, out = hf_attention.self, hf_attention.output
        self.num_heads = num_heads
        self.head_dim = self_attn.query.out_features // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q_proj = conv_from_linear(self_attn.query)
        self.k_proj = conv_from_linear(self_attn.key)
        self.v_proj = conv_from_linear(self_attn.value)
        self.out_proj = conv_from_linear(out.dense)
        self.norm = LayerNormANE.from_layer_norm(out.LayerNorm)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x: (B, C, 1, S); key_mask: (B, S, 1, 1) additive, 0 for real tokens and MASK_VALUE for padding."""
        q = self.q_proj(x) * self.scale
        heads_q = q.split(self.head_dim, dim=1)  # each (B, d, 1, S_q)
        heads_k = self.k_proj(x).transpose(1, 3).split(self.head_dim, dim=3)  # each (B, S_k, 1, d)
        heads_v = self.v_proj(x).split(self.head_dim, dim=1)  # each (B, d, 1, S_k)
        outputs = []
        for hq, hk, hv in zip(heads_q, heads_k, heads_v):
            scores = torch.einsum("bchq,bkhc->bkhq", hq, hk) + key_mask  # (B, S_k, 1, S_q)
            weights = scores.softmax(dim=1)
            outputs.append(torch.einsum("bkhq,bchk->bchq", weights, hv))  # (B, d, 1, S_q)
        attended = torch.cat(outputs, dim=1)
        return self.norm(self.out_proj(attended) + x)


class FeedForwardANE(nn.Module):
    def __init__(self, hf_layer: HfModule):
        super().__init__()
        self.up = conv_from_linear(hf_layer.intermediate.dense)
        self.down = conv_from_linear(hf_layer.output.dense)
        self.norm = LayerNormANE.from_layer_norm(hf_layer.output.LayerNorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.down(F.gelu(self.up(x))) + x)


class LayerANE(nn.Module):
    def __init__(self, hf_layer: HfModule, num_heads: int):
        super().__init__()
        self.attention = AttentionANE(hf_layer.attention, num_heads)
        self.ffn = FeedForwardANE(hf_layer)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.attention(x, key_mask))


def _check_supported(config) -> None:
    if getattr(config, "model_type", "bert") != "bert":
        raise ValueError(f"the ANE rewrite covers BERT encoders, not model_type '{config.model_type}'")
    if getattr(config, "hidden_act", "gelu") != "gelu":
        raise ValueError(f"the ANE rewrite supports hidden_act 'gelu', not '{config.hidden_act}'")
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("the ANE rewrite supports absolute position embeddings only")


class AneBert(nn.Module):
    """(input_ids, attention_mask) -> (token_states, sentence_embedding) or (logits,), ANE layout inside."""

    def __init__(self, hf_model: HfModule, task: Task):
        super().__init__()
        has_classifier = HEADS[task].classifier
        bert = hf_model.bert if has_classifier else hf_model
        config = bert.config
        _check_supported(config)
        self.task = task
        embeddings = bert.embeddings
        self.word = embeddings.word_embeddings
        self.position = embeddings.position_embeddings
        self.token_type = embeddings.token_type_embeddings
        self.embed_norm = LayerNormANE.from_layer_norm(embeddings.LayerNorm)
        self.layers = nn.ModuleList(LayerANE(layer, config.num_attention_heads) for layer in bert.encoder.layer)
        #: "cls": HF's pooler ([CLS] -> dense -> tanh); "mean": siliconlab's head on the normalised mean.
        self.pooling = getattr(hf_model, "pooling", "cls") if has_classifier else None
        if self.pooling == "cls":
            self.pooler = conv_from_linear(bert.pooler.dense)
        if has_classifier:
            self.classifier = conv_from_linear(hf_model.classifier)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        # token type 0 everywhere: a constant row, as EncoderWithHead passes zeros.
        hidden = self.word(input_ids) + self.position(positions) + self.token_type.weight[0]
        x = self.embed_norm(hidden.transpose(1, 2).unsqueeze(2))  # (B, C, 1, S)
        mask = attention_mask.to(x.dtype)
        key_mask = ((1.0 - mask) * MASK_VALUE)[:, :, None, None]  # (B, S, 1, 1)
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.pooling == "cls":
            pooled = torch.tanh(self.pooler(x[:, :, :, :1]))
            return (self.classifier(pooled).flatten(1),)
        weights = mask[:, None, None, :]  # (B, 1, 1, S)
        summed = (x * weights).sum(dim=3).squeeze(2)  # (B, C)
        embedding = pooled_unit_vector(summed, weights.sum(dim=3).squeeze(2))
        if self.pooling == "mean":
            return (self.classifier(embedding[:, :, None, None]).flatten(1),)
        token_states = x.squeeze(2).transpose(1, 2)  # (B, S, C): the documented output layout
        return token_states, embedding
