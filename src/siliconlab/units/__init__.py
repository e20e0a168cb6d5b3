"""The unit registry: every compute unit the code knows, available here or not.

Units live one folder per engine family (torch/, onnxruntime/, openvino/, fastbert/, coreml/, mlx/), each with
its helpers and rewritten models. Adding a unit is one module in its family's folder and one line here.
"""

from __future__ import annotations

from siliconlab.errors import UsageError
from siliconlab.units.base import Availability, Runner, Unit
from siliconlab.units.coreml import COREML_UNITS
from siliconlab.units.fastbert.units import TorchCudaBf16Graph, TorchCudaFp8, TorchCudaFp16Graph
from siliconlab.units.mlx.unit import MlxUnit
from siliconlab.units.onnxruntime.cpu import OnnxRuntimeCpuFp32
from siliconlab.units.onnxruntime.cpu_int8 import OnnxRuntimeCpuInt8
from siliconlab.units.onnxruntime.gpu import OnnxRuntimeCudaFp16, OnnxRuntimeTensorRtFp16
from siliconlab.units.onnxruntime.tensorrt import TensorRtFp16
from siliconlab.units.openvino.cpu import OpenVinoCpuFp32
from siliconlab.units.openvino.cpu_bf16 import OpenVinoCpuBf16
from siliconlab.units.openvino.cpu_int8 import OpenVinoCpuInt8
from siliconlab.units.openvino.cpu_int8_static import OpenVinoCpuInt8Static
from siliconlab.units.torch.cpu import TorchCpuFp32
from siliconlab.units.torch.cuda import TorchCudaBf16, TorchCudaFp16, TorchCudaFp32

BASELINE = "torch-cpu-fp32"

REGISTRY: dict[str, type[Unit]] = {
    unit.name: unit
    for unit in (
        TorchCpuFp32,
        OnnxRuntimeCpuFp32,
        OnnxRuntimeCpuInt8,
        OpenVinoCpuFp32,
        OpenVinoCpuInt8,
        OpenVinoCpuBf16,
        OpenVinoCpuInt8Static,
        TorchCudaFp32,
        TorchCudaFp16,
        TorchCudaBf16,
        TorchCudaFp16Graph,
        TorchCudaBf16Graph,
        TorchCudaFp8,
        OnnxRuntimeCudaFp16,
        OnnxRuntimeTensorRtFp16,
        TensorRtFp16,
        *COREML_UNITS,
        MlxUnit,
    )
}


def get_unit(name: str) -> Unit:
    try:
        return REGISTRY[name]()
    except KeyError:
        raise UsageError(f"unknown unit '{name}': choose from {', '.join(REGISTRY)} or 'all'") from None


def select_units(spec: str | None) -> list[Unit]:
    """'all' / None -> every available unit; otherwise a comma list, each name checked against the registry."""
    if spec is None or spec.strip() == "all":
        return [unit() for unit in REGISTRY.values() if unit().availability().ok]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UsageError(f"no unit given: choose from {', '.join(REGISTRY)} or 'all'")
    return [get_unit(name) for name in dict.fromkeys(names)]


__all__ = ["BASELINE", "REGISTRY", "Availability", "Runner", "Unit", "get_unit", "select_units"]
