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
        self.request = self.compiled.create_infer_request()
        self.executed_precision = executed_precision(self.compiled)
        self.output_names = tuple(out.get_any_name() for out in self.compiled.outputs)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        result = self.request.infer({"input_ids": input_ids, "attention_mask": attention_mask})
        import numpy as np

        return {name: np.asarray(result[port]) for name, port in zip(self.output_names, self.compiled.outputs)}


#: The runtime graph's precision names -> ours (u8/i8 arithmetic is int8).
_PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "u8": "int8", "i8": "int8"}


def matmul_precisions(compiled) -> dict[str, int]:
    """How many of the executed graph's matrix layers compute in each precision, as the plugin compiled them
    (read from the runtime model: what runs, not what was asked for). The kernel's primitiveType suffix names
    the arithmetic ('undef_bf16', 'brgemm_avx512_f32', 'undef_i8'); runtimePrecision names the weights' storage.
    A float kernel over int8 weights quantizes its activations to int8 on the fly where the plugin's dynamic
    quantization is on and the CPU has int8 dot products (MiniLM weight-only int8, batch 32, AMD Zen 5: 31 ms
    with it, 54 ms without): that is int8 arithmetic, and counted so."""
    from siliconlab.cpu_features import detect

    dynamic = int(compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") or 0) > 0 and detect().int8_dot
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in ("FullyConnected", "MatMul"):
            name = _PRECISIONS.get(info["primitiveType"].astype(str).rsplit("_", 1)[-1].lower(), "other")
            weights = _PRECISIONS.get(info["runtimePrecision"].astype(str).lower())
            if dynamic and weights == "int8" and name in ("fp32", "bf16", "fp16"):
                name = "int8"
            counts[name] = counts.get(name, 0) + 1
    return counts


def executed_precision(compiled) -> str:
    """'fp32', 'bf16', 'int8', or a mix such as 'int8 30/36, bf16 6/36' when the layers differ."""
    counts = matmul_precisions(compiled)
    if not counts:
        return _PRECISIONS.get(compiled.get_property("INFERENCE_PRECISION_HINT").to_string(), "unknown")
    if len(counts) == 1:
        return next(iter(counts))
    total = sum(counts.values())
    return ", ".join(f"{name} {n}/{total}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


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
