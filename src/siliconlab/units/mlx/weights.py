"""Safetensors files as MLX arrays: what the encoder (bert.py) and the decoders (causal.py) load their weights with."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx


def load_safetensors(path: Path) -> dict[str, mx.array]:
    """The named tensors of one .safetensors file (mx.load's answer is typed for .npy and GGUF files too)."""
    loaded = mx.load(str(path))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds no named tensors")
    return loaded
