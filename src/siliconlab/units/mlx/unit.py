"""mlx: the BERT encoder in MLX (units/mlx/bert.py) — Metal GPU on Apple silicon, the CPU build elsewhere.

The artifact is the model's safetensors + config.json, as saved by transformers; MLX loads the tensors as
they are. On Linux the `mlx[cpu]` wheel links a reference BLAS and is slow (docs/apple.md): it is here for parity,
not for speed — don't read anything into its timings on Linux.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from siliconlab.models.base import HEADS, OUTPUT_NAMES
from siliconlab.models.hf_directory import task_of
from siliconlab.units.base import Availability, Conversion, Unit

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

APPLE_SILICON = sys.platform == "darwin" and platform.machine() == "arm64"


class MlxRunner:
    def __init__(self, artifact_dir: Path):
        import mlx.core as mx

        from siliconlab.units.mlx import bert as mlx_bert

        config = json.loads((artifact_dir / "config.json").read_text())
        mlx_bert.check_supported(config)
        self.task = task_of(type("Config", (), config))
        self.output_names = OUTPUT_NAMES[self.task]
        self.head = _mean_head(artifact_dir, config)  # siliconlab's head on the normalised mean, if any
        cls_head = HEADS[self.task].classifier and self.head is None
        factory = mlx_bert.BertForSequenceClassification if cls_head else mlx_bert.BertModel
        self.model = factory(config)
        mlx_bert.load_weights(self.model, artifact_dir)
        self._mx = mx
        self._pool = mlx_bert.mean_pool_normalize

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        mx = self._mx
        ids, mask = mx.array(input_ids.astype(np.int32)), mx.array(attention_mask.astype(np.int32))
        if self.head is not None:
            weight, bias = self.head
            outputs = [self._pool(self.model(ids, mask), mask) @ weight.T + bias]
        elif HEADS[self.task].classifier:
            outputs = [self.model(ids, mask)]
        else:
            states = self.model(ids, mask)
            outputs = [states, self._pool(states, mask)]
        mx.eval(*outputs)
        return {name: np.array(out, dtype=np.float32) for name, out in zip(self.output_names, outputs)}

    def synchronize(self) -> None:
        self._mx.synchronize()


def _mean_head(artifact_dir: Path, config: dict) -> tuple | None:
    """(W, b) as MLX arrays when the folder carries siliconlab's mean-pool head (models/heads.py)."""
    from siliconlab.models.base import HEAD_FILE, head_spec

    if head_spec(config) is None:
        return None
    import mlx.core as mx
    from safetensors.numpy import load_file

    tensors = load_file(str(artifact_dir / HEAD_FILE))
    return mx.array(tensors["weight"]), mx.array(tensors["bias"])


class MlxUnit(Unit):
    name = "mlx"
    engine = "mlx"
    device = "gpu" if APPLE_SILICON else "cpu"
    precision = "fp32"
    requires = ("mlx", "torch", "safetensors")

    def platform_availability(self) -> Availability:
        try:
            import mlx.core as mx
        except Exception as exc:  # the wheel installs but its backend may not load (e.g. `mlx` without [cpu])
            return Availability.no(f"mlx does not load: {type(exc).__name__}: {exc}"[:200])
        if not mx.metal.is_available() and APPLE_SILICON:
            return Availability.no("mlx loads but reports no Metal device")
        return Availability.yes()

    def timing_availability(self) -> Availability:
        available = self.availability()
        if available.ok and not APPLE_SILICON:
            return Availability.no(
                "MLX's CPU build off Apple silicon uses a reference BLAS: parity is checked, timing would mislead"
            )
        return available

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import mlx.core as mx

        from siliconlab.units.mlx.bert import check_supported

        check_supported(model.model.config.to_dict())
        model.model.save_pretrained(out_dir, safe_serialization=True)
        return Conversion(
            graph={
                "format": "safetensors",
                "attention": "mx.fast.scaled_dot_product_attention",
                "device": str(mx.default_device()),
            },
            library_versions={"mlx": version("mlx")},
        )

    def load(self, artifact_dir: Path, threads: int) -> MlxRunner:
        return MlxRunner(artifact_dir)
