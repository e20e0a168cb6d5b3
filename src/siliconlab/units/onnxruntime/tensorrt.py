"""tensorrt-fp16: a TensorRT engine built from the ONNX export (TensorRT 10 Python API), run through torch buffers.

Detected when the `tensorrt` package imports and a CUDA device is present. One optimization profile covers
batch 1..MAX_BATCH and sequence 1..max_length (optimised for batch 1, seq 128).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from siliconlab.units.base import HALF_COSINE_MIN, Availability, Conversion, Unit
from siliconlab.units.cuda import CudaRunnerMixin, cuda_availability, to_host

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

ENGINE = "model.plan"
INPUTS = ("input_ids", "attention_mask")
MAX_BATCH = 256
OPT_SHAPE = (1, 128)


def _torch_dtype(trt_dtype):
    import tensorrt as trt
    import torch

    return {
        trt.int32: torch.int32,
        trt.int64: torch.int64,
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.bfloat16: torch.bfloat16,
    }[trt_dtype]


def build_engine(onnx_path: Path, engine_path: Path, max_length: int) -> dict[str, int]:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX export: {errors}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    opt = (OPT_SHAPE[0], min(OPT_SHAPE[1], max_length))
    for name in INPUTS:
        profile.set_shape(name, (1, 1), opt, (MAX_BATCH, max_length))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine")
    engine_path.write_bytes(bytes(serialized))
    return {"layers": network.num_layers, "max_batch": MAX_BATCH, "max_seq": max_length}


class TensorRtRunner(CudaRunnerMixin):
    def __init__(self, engine_path: Path):
        import tensorrt as trt

        self.runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.output_names = tuple(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        keep = []
        for name, array in zip(INPUTS, (input_ids, attention_mask)):
            tensor = torch.from_numpy(array).to("cuda", _torch_dtype(self.engine.get_tensor_dtype(name)))
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
            keep.append(tensor)
        outputs = []
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=_torch_dtype(self.engine.get_tensor_dtype(name)), device="cuda")
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return dict(zip(self.output_names, to_host(outputs)))


class TensorRtFp16(Unit):
    name = "tensorrt-fp16"
    engine = "tensorrt"
    device = "cuda"
    precision = "fp16"
    cosine_min = HALF_COSINE_MIN
    requires = ("tensorrt", "onnx", "torch")

    def platform_availability(self) -> Availability:
        if importlib.util.find_spec("tensorrt") is None:  # `requires` already reports it; kept for direct calls
            return Availability.no("missing Python package(s): tensorrt")
        return cuda_availability()

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import tensorrt as trt

        from siliconlab.units.onnxruntime.export import export_onnx

        onnx_path = export_onnx(model, out_dir / "exported.onnx")
        info = build_engine(onnx_path, out_dir / ENGINE, model.max_length)
        onnx_path.unlink()
        return Conversion(graph={"engine": ENGINE, **info}, library_versions={"tensorrt": trt.__version__})

    def load(self, artifact_dir: Path, threads: int) -> TensorRtRunner:
        return TensorRtRunner(artifact_dir / ENGINE)
