"""onnxruntime-cuda-fp16 and onnxruntime-tensorrt-fp16: ONNX Runtime's GPU execution providers.

Detected when the onnxruntime-gpu package is installed and its provider list holds the provider (ORT's
documented `get_available_providers()`); the CPU wheel lists neither, so they are unavailable with that
reason. The artifact is the same fused ONNX as onnxruntime-cpu-fp32 (ORT's BERT optimizer: EmbedLayerNorm,
Attention, SkipLayerNorm, BiasGelu), converted to fp16 with fp32 inputs/outputs kept.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from siliconlab.units.base import HALF_COSINE_MIN, Availability, Conversion, Unit
from siliconlab.units.cuda import CudaRunnerMixin

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

ARTIFACT = "model_fp16.onnx"


def provider_availability(provider: str) -> Availability:
    if importlib.util.find_spec("onnxruntime") is None:
        return Availability.no("missing Python package(s): onnxruntime-gpu")
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if provider not in providers:
        return Availability.no(
            f"onnxruntime {ort.__version__} has no {provider} (available: {', '.join(providers)}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU"
        )
    return Availability.yes()


class OrtGpuRunner(CudaRunnerMixin):
    def __init__(self, path: Path, providers: list[Any]):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.output_names = tuple(out.name for out in self.session.get_outputs())

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        outputs = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return {name: np.asarray(out, dtype=np.float32) for name, out in zip(self.output_names, outputs)}

    def synchronize(self) -> None:
        return None  # session.run returns host arrays: the device work is already done


class OrtGpuUnit(Unit):
    engine = "onnxruntime"
    device = "cuda"
    precision = "fp16"
    cosine_min = HALF_COSINE_MIN
    requires = ("onnx", "onnxruntime")
    provider: ClassVar[str]

    def platform_availability(self) -> Availability:
        return provider_availability(self.provider)

    def providers(self, artifact_dir: Path) -> list[Any]:
        return [(self.provider, {}), "CPUExecutionProvider"]

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        from onnxruntime.transformers.optimizer import optimize_model

        from siliconlab.units.onnxruntime.cpu import ort_versions
        from siliconlab.units.onnxruntime.export import export_onnx

        raw = export_onnx(model, out_dir / "exported.onnx")
        optimized = optimize_model(
            str(raw), model_type="bert", num_heads=model.num_heads, hidden_size=model.hidden_size, use_gpu=True
        )
        optimized.convert_float_to_float16(keep_io_types=True)
        optimized.save_model_to_file(str(out_dir / ARTIFACT))
        raw.unlink()
        fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
        return Conversion(graph={"fused_ops": fused, "provider": self.provider}, library_versions=ort_versions())

    def load(self, artifact_dir: Path, threads: int) -> OrtGpuRunner:
        return OrtGpuRunner(artifact_dir / ARTIFACT, self.providers(artifact_dir))


class OnnxRuntimeCudaFp16(OrtGpuUnit):
    name = "onnxruntime-cuda-fp16"
    provider = "CUDAExecutionProvider"


class OnnxRuntimeTensorRtFp16(OrtGpuUnit):
    name = "onnxruntime-tensorrt-fp16"
    provider = "TensorrtExecutionProvider"

    def providers(self, artifact_dir: Path) -> list[Any]:
        cache = artifact_dir / "trt-cache"
        cache.mkdir(exist_ok=True)
        options = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
        return [(self.provider, options), ("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
