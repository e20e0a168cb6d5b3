"""openvino-cpu-bf16: the fp32 IR compiled with INFERENCE_PRECISION_HINT=bf16, where the CPU has bf16 arithmetic.

On AMX (Intel Xeon) the matrix work runs on the bf16 tiles; on AVX-512 BF16 (Intel, AMD Zen 4/5) through
vdpbf16ps. Measured, bert-base B1 S128, 2 threads on an Intel Xeon with AMX: 6.6x torch fp32 at token cosine
0.99999. Where bf16 is not native the plugin would emulate it, so the unit is unavailable there with that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from siliconlab.cpu_features import detect
from siliconlab.units.base import HALF_COSINE_MIN, Availability, Conversion, Unit
from siliconlab.units.openvino.cpu import ARTIFACT, OpenVinoRunner, op_histogram, openvino_model, openvino_versions

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel


class OpenVinoCpuBf16(Unit):
    name = "openvino-cpu-bf16"
    engine = "openvino"
    device = "cpu"
    precision = "bf16"
    cosine_min = HALF_COSINE_MIN
    requires = ("openvino", "onnx")

    def platform_availability(self) -> Availability:
        reason = detect().bf16_reason()
        return Availability.no(reason) if reason else Availability.yes()

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import openvino as ov

        converted = openvino_model(model, out_dir)
        # The IR keeps fp32 weights: the plugin converts them to bf16 at compile time, for this CPU's kernels.
        ov.save_model(converted, str(out_dir / ARTIFACT), compress_to_fp16=False)
        return Conversion(graph={"ops": op_histogram(converted)}, library_versions=openvino_versions())

    def load(self, artifact_dir: Path, threads: int) -> OpenVinoRunner:
        return OpenVinoRunner(artifact_dir / ARTIFACT, threads, inference_precision="bf16")
