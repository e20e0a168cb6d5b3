"""onnxruntime-cpu-fp32: ONNX export + ORT's BERT graph fusions (EmbedLayerNorm, Attention, LayerNorm, BiasGelu).

Residual + LayerNorm stays as Add + LayerNormalization, not ORT's fused SkipLayerNormalization: in ORT 1.32
that contrib kernel is ~5x slower on the CPU than Add + LayerNormalization (MiniLM's 19x384: ~24 vs ~7 us a
node; BERT-base's 128x768: ~310 vs ~64 us), so the offline optimizer is told not to fuse it and the session
not to re-fuse it (docs/units.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from siliconlab.models.base import LoadedModel
from siliconlab.units.base import Conversion, CpuRunnerMixin, Unit
from siliconlab.units.onnx_export import export_onnx

ARTIFACT = "model.onnx"
#: ORT graph transformers the CPU session must not run (see the module docstring).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OrtRunner(CpuRunnerMixin):
    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
        )
        self.output_names = tuple(out.name for out in self.session.get_outputs())

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return dict(zip(self.output_names, outputs))


def export_fused(model: LoadedModel, out_dir: Path) -> tuple[Path, dict[str, int]]:
    """Export to ONNX and apply ORT's transformer optimizer; returns the fused graph and fusion counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    raw = export_onnx(model, out_dir / "exported.onnx")
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    fusion = FusionOptions("bert")
    fusion.enable_skip_layer_norm = False
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=model.num_heads,
        hidden_size=model.hidden_size,
        opt_level=1,
        optimization_options=fusion,
    )
    fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
    path = out_dir / ARTIFACT
    optimized.save_model_to_file(str(path))
    raw.unlink()
    return path, fused


def ort_versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


class OnnxRuntimeCpuFp32(Unit):
    name = "onnxruntime-cpu-fp32"
    engine = "onnxruntime"
    device = "cpu"
    precision = "fp32"
    recipe = "fused-no-skiplayernorm"
    requires = ("onnx", "onnxruntime")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        _, fused = export_fused(model, out_dir)
        return Conversion(graph={"fused_ops": fused}, library_versions=ort_versions())

    def load(self, artifact_dir: Path, threads: int) -> OrtRunner:
        return OrtRunner(artifact_dir / ARTIFACT, threads)
