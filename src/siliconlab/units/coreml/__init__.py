"""CoreML compute units: one fp16 ML Program per model and variant, run on the ANE, the GPU, the CPU or all.

`coreml-ane` / `coreml-gpu` / `coreml-cpu` / `coreml-all` differ only in the ComputeUnit Core ML is told to
use (CPU_AND_NE, CPU_AND_GPU, CPU_ONLY, ALL); the package is converted once per (model, variant) and
hard-linked into each unit's artifact folder. `coreml-ane` converts the ANE-optimized rewrite
(units/coreml/ane_bert.py) by default, the others the stock encoder; `--ane-optimized` / `--no-ane-optimized`
on `siliconlab convert` sets it for every CoreML unit (then all four share one package).
The `-int8` units store weights as per-channel int8 (coremltools.optimize linear quantization) and compute
in fp16.

Conversion runs wherever coremltools installs (Linux included); prediction needs macOS. Where it cannot
predict, the pipeline records structural checks and the converted PyTorch module's fp32 parity instead.
"""

from __future__ import annotations

import copy
import platform
import sys
from pathlib import Path
from typing import Any, ClassVar

from siliconlab.models.base import LoadedModel
from siliconlab.units.base import INT8_COSINE_MIN, Availability, Conversion, Unit

FP16_COSINE_MIN = 0.999
#: The converted PyTorch module (ANE rewrite or tracing wrapper) in fp32 vs the stock model.
FP32_REWRITE_COSINE_MIN = 0.9999
PREDICTION_NEEDS_MACOS = "CoreML prediction needs macOS"
MIN_MACOS = (15, 0)  # the package's deployment target (two inputs with enumerated shapes need it)


def _macos_version() -> tuple[int, ...]:
    release = platform.mac_ver()[0]
    return tuple(int(part) for part in release.split(".") if part.isdigit()) if release else ()


class CoreMLUnit(Unit):
    engine = "coreml"
    precision = "fp16"
    cosine_min = FP16_COSINE_MIN
    requires = ("coremltools", "torch")
    compute_unit: ClassVar[str]  # a coremltools.ComputeUnit member name
    weights: ClassVar[str] = "fp16"
    ane_optimized_default: ClassVar[bool] = False
    options = ("ane_optimized",)

    def __init__(self, ane_optimized: bool | None = None):
        self.ane_optimized = self.ane_optimized_default if ane_optimized is None else ane_optimized

    @property
    def recipe(self) -> str:  # type: ignore[override]
        from siliconlab.units.coreml.export import EXPORT_RECIPE

        return f"{EXPORT_RECIPE}-ane{int(self.ane_optimized)}"

    def availability(self) -> Availability:
        if sys.platform != "darwin":
            return Availability.no(PREDICTION_NEEDS_MACOS)
        return super().availability()

    def platform_availability(self) -> Availability:
        version = _macos_version()
        if version and version < MIN_MACOS:
            return Availability.no(f"needs macOS {MIN_MACOS[0]}+ (the package's deployment target), found {version}")
        if self.compute_unit == "CPU_AND_NE" and platform.machine() != "arm64":
            return Availability.no("no Neural Engine: needs Apple silicon")
        return Availability.yes()

    def conversion_availability(self) -> Availability:
        return self.package_availability()  # coremltools converts on Linux too

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import coremltools

        from siliconlab.units.coreml.export import build_module, enumerated_shapes, place_package, shared_package

        module = build_module(model, self.ane_optimized, self.weights)
        package, facts = shared_package(model, copy.deepcopy(module), self.ane_optimized, self.weights, self.shared_dir)
        place_package(package, out_dir)
        graph = {
            "format": "mlprogram (.mlpackage)",
            "compute_unit": self.compute_unit,
            "ane_optimized": self.ane_optimized,
            "weights": self.weights,
            "flexible_shapes": "enumerated",
            "enumerated_shapes": [list(s) for s in enumerated_shapes(model.max_length)],
            "deployment_target": f"macOS {MIN_MACOS[0]}",
            **facts,
        }
        return Conversion(
            graph=graph,
            library_versions={"coremltools": coremltools.__version__},
            converted_module=module,
            converted_module_cosine_min=self.cosine_min if self.weights == "int8" else FP32_REWRITE_COSINE_MIN,
        )

    def check_structure(self, artifact_dir: Path, model: LoadedModel) -> dict[str, Any]:
        from siliconlab.units.coreml.export import PACKAGE, enumerated_shapes
        from siliconlab.units.coreml.structure import compute_plan_devices, inspect_package

        package = artifact_dir / PACKAGE
        facts = inspect_package(package, model, enumerated_shapes(model.max_length))
        if self.weights == "int8" and facts["quantized_weight_ops"] == 0:
            raise ValueError("the int8 package holds no quantized weights")
        facts["compute_plan_devices"] = compute_plan_devices(package, self.compute_unit)
        return facts

    def load(self, artifact_dir: Path, threads: int):
        from siliconlab.units.coreml.export import PACKAGE
        from siliconlab.units.coreml.runner import CoreMLRunner

        return CoreMLRunner(artifact_dir / PACKAGE, self.compute_unit)


class CoreMLAne(CoreMLUnit):
    name = "coreml-ane"
    device = "ane"
    compute_unit = "CPU_AND_NE"
    ane_optimized_default = True


class CoreMLGpu(CoreMLUnit):
    name = "coreml-gpu"
    device = "gpu"
    compute_unit = "CPU_AND_GPU"


class CoreMLCpu(CoreMLUnit):
    name = "coreml-cpu"
    device = "cpu"
    compute_unit = "CPU_ONLY"


class CoreMLAll(CoreMLUnit):
    name = "coreml-all"
    device = "ane+gpu+cpu"
    compute_unit = "ALL"


class CoreMLAneInt8(CoreMLAne):
    name = "coreml-ane-int8"
    precision = "int8"
    compute_precision = "fp16"  # weight-only int8: compute stays fp16
    cosine_min = INT8_COSINE_MIN
    weights = "int8"


class CoreMLGpuInt8(CoreMLGpu):
    name = "coreml-gpu-int8"
    precision = "int8"
    compute_precision = "fp16"  # weight-only int8: compute stays fp16
    cosine_min = INT8_COSINE_MIN
    weights = "int8"


COREML_UNITS = (CoreMLAne, CoreMLGpu, CoreMLCpu, CoreMLAll, CoreMLAneInt8, CoreMLGpuInt8)
