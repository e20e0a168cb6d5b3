"""openvino-cpu-fp32 and the shared OpenVINO runner.

Saved with compress_to_fp16=False: fp16 weight compression costs accuracy and speed on the CPU (docs/units.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from siliconlab.units.base import Conversion, CpuRunnerMixin, Unit

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

ARTIFACT = "model.xml"


class OpenVinoRunner(CpuRunnerMixin):
    """`inference_precision` is pinned, never left to the plugin: OpenVINO's CPU plugin computes in bf16 by default
    wherever AMX or AVX-512 BF16 exist (Intel Xeon with AMX, AMD Zen 4/5), which failed the fp32 gate there
    (MiniLM pooled cosine 0.999979; pinned f32: 1.000000)."""

    def __init__(self, path: Path, threads: int, inference_precision: str = "f32"):
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  "INFERENCE_PRECISION_HINT": inference_precision}  # fmt: skip
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        #: What the engine says it runs in (read back, not assumed): 'f32' or 'bf16'.
        self.executed_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.request = self.compiled.create_infer_request()
        self.output_names = tuple(out.get_any_name() for out in self.compiled.outputs)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        result = self.request.infer({"input_ids": input_ids, "attention_mask": attention_mask})
        import numpy as np

        return {name: np.asarray(result[port]) for name, port in zip(self.output_names, self.compiled.outputs)}


def openvino_model(model: LoadedModel, out_dir: Path):
    import openvino as ov

    from siliconlab.units.onnxruntime.export import export_onnx

    onnx_path = export_onnx(model, out_dir / "exported.onnx")
    converted = ov.convert_model(str(onnx_path))
    onnx_path.unlink()
    return converted


def op_histogram(ov_model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ov_model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("MatMul", "FakeQuantize", "Convert", "Multiply", "Softmax", "MVN"):
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def openvino_versions() -> dict[str, str]:
    import openvino

    return {"openvino": openvino.__version__}


class OpenVinoCpuFp32(Unit):
    name = "openvino-cpu-fp32"
    engine = "openvino"
    device = "cpu"
    precision = "fp32"
    requires = ("openvino", "onnx")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import openvino as ov

        converted = openvino_model(model, out_dir)
        ov.save_model(converted, str(out_dir / ARTIFACT), compress_to_fp16=False)
        return Conversion(graph={"ops": op_histogram(converted)}, library_versions=openvino_versions())

    def load(self, artifact_dir: Path, threads: int) -> OpenVinoRunner:
        return OpenVinoRunner(artifact_dir / ARTIFACT, threads)
