"""mlx for decoders: a causal LM in MLX (units/mlx/causal.py) with an mlx-lm style KV cache.

The same name as the MLX encoder unit (`mlx`): Metal GPU on Apple silicon, the CPU build elsewhere. The
artifact is the model's safetensors + config.json as transformers saves them; MLX loads the tensors as they
are (fp32). On Linux the `mlx[cpu]` wheel links a reference BLAS: it is here for parity on tiny models, and
`bench` does not time it by default (the encoder unit's timing_availability says why).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.base import Conversion, GenerativeUnit, GreedyDecoderMixin
from siliconlab.units.mlx.unit import MlxUnit

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel
    from siliconlab.units.base import Availability


class MlxDecoderRunner(GreedyDecoderMixin):
    """prefill/decode_step on an MLX model; the cache is one KVCache per layer, grown in place by each step."""

    def __init__(self, artifact_dir: Path):
        import mlx.core as mx

        from siliconlab.models.generative import context_length
        from siliconlab.units.mlx.causal import build

        config = json.loads((artifact_dir / "config.json").read_text())
        self.model = build(config, artifact_dir)
        self.max_length = context_length(type("Config", (), config))
        self._mx = mx

    def _step(self, ids: np.ndarray, caches: list[Any]) -> tuple[np.ndarray, Any]:
        mx = self._mx
        logits = self.model(mx.array(ids.astype(np.int32)), caches)
        mx.eval(logits, *[a for cache in caches for a in cache.state()])
        return np.array(logits, dtype=np.float32), caches

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        from siliconlab.units.mlx.causal import KVCache

        caches = [KVCache() for _ in range(self.model.layer_count())]
        return self._step(np.asarray(input_ids), caches)

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """The cache is consumed: it grows in place (as mlx-lm's does), so keep no earlier handle to reuse."""
        return self._step(np.asarray(token_ids).reshape(-1, 1), cache)

    def synchronize(self) -> None:
        self._mx.synchronize()


class MlxDecoder(GenerativeUnit):
    name = "mlx"
    engine = "mlx"
    device = MlxUnit.device
    precision = "fp32"
    requires = ("mlx", "safetensors", "torch", "transformers")
    recipe = "decoder-1"

    def platform_availability(self) -> Availability:
        return MlxUnit().platform_availability()

    def timing_availability(self) -> Availability:
        return MlxUnit().timing_availability()

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import mlx.core as mx

        from siliconlab.units.mlx.causal import check_supported

        check_supported(model.model.config.to_dict())
        model.model.save_pretrained(out_dir, safe_serialization=True)
        graph = {"format": "safetensors", "attention": "mx.fast.scaled_dot_product_attention",
                 "cache": "preallocated KV, 256-position chunks", "device": str(mx.default_device())}  # fmt: skip
        return Conversion(graph=graph, library_versions={"mlx": version("mlx")})

    def load(self, artifact_dir: Path, threads: int) -> MlxDecoderRunner:
        return MlxDecoderRunner(artifact_dir)
