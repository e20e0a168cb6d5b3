"""A BERT encoder written with mlx.nn, loading the Hugging Face safetensors weights as they are.

Module names mirror transformers' BertModel (embeddings.word_embeddings, encoder.layer.N.attention.self.query,
...), so `model.safetensors` loads key for key; nn.Linear in MLX stores weights (out, in) like PyTorch.
Attention uses mx.fast.scaled_dot_product_attention (fused on Metal) with an additive key mask.
Outputs match EncoderWithHead: token_states (B, S, H) + mean-pooled L2-normalised sentence_embedding, or
logits for a sequence-classification checkpoint (tanh pooler on [CLS] + classifier).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from siliconlab.units.mlx.weights import load_safetensors

MASK_VALUE = -1e9


class Embeddings(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config.get("layer_norm_eps", 1e-12))

    def __call__(self, input_ids: mx.array) -> mx.array:
        positions = mx.arange(input_ids.shape[1])[None, :]
        hidden = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.LayerNorm(hidden + self.token_type_embeddings.weight[0])  # token type 0 throughout


class SelfAttention(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class DenseNorm(nn.Module):
    """dense -> + residual -> LayerNorm (BertSelfOutput / BertOutput)."""

    def __init__(self, dims_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(dims_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def __call__(self, x: mx.array, residual: mx.array) -> mx.array:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.self = SelfAttention(hidden)
        self.output = DenseNorm(hidden, hidden, eps)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        batch, seq, hidden = x.shape
        head_dim = hidden // self.heads

        def split(t: mx.array) -> mx.array:
            return t.reshape(batch, seq, self.heads, head_dim).transpose(0, 2, 1, 3)

        q, k, v = split(self.self.query(x)), split(self.self.key(x)), split(self.self.value(x))
        attended = mx.fast.scaled_dot_product_attention(q, k, v, scale=head_dim**-0.5, mask=mask)
        return self.output(attended.transpose(0, 2, 1, 3).reshape(batch, seq, hidden), x)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def __call__(self, x: mx.array) -> mx.array:
        return nn.gelu(self.dense(x))  # exact (erf) GELU, as BERT's "gelu"


class Layer(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        hidden, inner, eps = config["hidden_size"], config["intermediate_size"], config.get("layer_norm_eps", 1e-12)
        self.attention = Attention(hidden, config["num_attention_heads"], eps)
        self.intermediate = Intermediate(hidden, inner)
        self.output = DenseNorm(inner, hidden, eps)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        attended = self.attention(x, mask)
        return self.output(self.intermediate(attended), attended)


class Encoder(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.layer = [Layer(config) for _ in range(config["num_hidden_layers"])]


class Pooler(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def __call__(self, states: mx.array) -> mx.array:
        return mx.tanh(self.dense(states[:, 0]))


class BertModel(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config["hidden_size"])

    def __call__(self, input_ids: mx.array, attention_mask: mx.array) -> mx.array:
        x = self.embeddings(input_ids)
        mask = ((1.0 - attention_mask.astype(x.dtype)) * MASK_VALUE)[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x


class BertForSequenceClassification(nn.Module):
    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.bert = BertModel(config)
        self.classifier = nn.Linear(config["hidden_size"], len(config.get("id2label", {})) or config["num_labels"])

    def __call__(self, input_ids: mx.array, attention_mask: mx.array) -> mx.array:
        return self.classifier(self.bert.pooler(self.bert(input_ids, attention_mask)))


def mean_pool_normalize(states: mx.array, attention_mask: mx.array) -> mx.array:
    mask = attention_mask.astype(states.dtype)[:, :, None]
    mean = (states * mask).sum(axis=1) / mx.maximum(mask.sum(axis=1), 1e-9)
    return mean / mx.maximum(mx.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def check_supported(config: dict[str, Any]) -> None:
    if config.get("model_type") != "bert":
        raise ValueError(f"the MLX encoder covers BERT, not model_type '{config.get('model_type')}'")
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("the MLX encoder supports hidden_act 'gelu' and absolute position embeddings only")


def load_weights(model: nn.Module, folder: Path) -> None:
    """Every parameter of `model` must come from the folder's safetensors (extra keys, e.g. an unused pooler, are
    allowed; a missing one is an error, never a silently random weight)."""
    weights: dict[str, mx.array] = {}
    for path in sorted(folder.glob("*.safetensors")):
        weights.update(load_safetensors(path))
    from mlx.utils import tree_flatten

    flat = tree_flatten(model.parameters())
    wanted = set(flat) if isinstance(flat, dict) else {name for name, _ in flat}
    missing = sorted(wanted - set(weights))
    if missing:
        raise ValueError(f"{len(missing)} weight(s) missing from {folder}: {', '.join(missing[:5])}")
    model.load_weights([(name, weights[name].astype(mx.float32)) for name in wanted])
    mx.eval(model.parameters())
