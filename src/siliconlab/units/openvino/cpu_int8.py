"""openvino-cpu-int8: NNCF int8 weight compression (symmetric, per-channel); activations fp32, or int8 on the fly
where the CPU has int8 dot products (OpenVINO's dynamic quantization).

Chosen by measurement on MiniLM (docs/units.md): NNCF's full static int8 (transformer preset, calibrated on
real text) reached pooled cosine only 0.986 and ran ~1.4x *slower* than fp32 on an AVX2 CPU without VNNI;
weight-only int8 keeps cosine ≥ 0.998, runs at fp32 speed or better and quarters the weight bytes.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from siliconlab.models.base import LoadedModel
from siliconlab.units.base import INT8_COSINE_MIN, Conversion, Unit
from siliconlab.units.openvino.cpu import (
    ARTIFACT,
    OpenVinoRunner,
    op_histogram,
    openvino_model,
    openvino_versions,
)


class OpenVinoCpuInt8(Unit):
    name = "openvino-cpu-int8"
    engine = "openvino"
    device = "cpu"
    precision = "int8"
    # Weights int8. The matmuls run in fp32 after decompression on CPUs without int8 dot products; with VNNI/AMX
    # OpenVINO quantizes the activations to int8 on the fly (dynamic quantization, groups of 32): the runner reads
    # back which (cpu.matmul_precisions) and the bench holds the row to that floor.
    compute_precision = "fp32"
    cosine_min = INT8_COSINE_MIN
    recipe = "nncf-compress-weights-int8-sym"
    requires = ("openvino", "onnx", "nncf")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import nncf
        import openvino as ov

        nncf.set_log_level(logging.ERROR)  # its bit-width table would land in the middle of our output
        source = openvino_model(model, out_dir)
        with contextlib.redirect_stdout(io.StringIO()):  # nncf draws a progress bar on stdout
            compressed = nncf.compress_weights(source, mode=nncf.CompressWeightsMode.INT8_SYM)
        ov.save_model(compressed, str(out_dir / ARTIFACT), compress_to_fp16=False)
        versions = openvino_versions() | {"nncf": nncf.__version__}
        return Conversion(
            graph={"ops": op_histogram(compressed), "quantization": "int8 weights (symmetric), fp32 activations"},
            library_versions=versions,
        )

    def load(self, artifact_dir: Path, threads: int) -> OpenVinoRunner:
        return OpenVinoRunner(artifact_dir / ARTIFACT, threads)
