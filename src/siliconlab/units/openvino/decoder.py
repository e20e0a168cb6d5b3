"""OpenVINO CPU decoders: the ONNX Runtime decoder's step graph (explicit past/present KV) read by OpenVINO.

The graph is the one units/onnxruntime/decoder.py exports: (input_ids, position_ids, past k/v per layer) ->
(logits of the last position, present k/v); prefill is the step with an empty past, decode the step with one
token, and the cache lives in numpy between calls — the same contract, so parity compares engines, not
recipes. The KV cache stays explicit rather than OpenVINO's stateful transformation: the runner then keeps any
number of independent caches (teacher-forced parity holds one per prompt) and batch rows need no beam index.
fp32 compiles with INFERENCE_PRECISION_HINT=f32 (a CPU with bf16/AMX would otherwise run bf16).
int8 is NNCF's weight compression (int8 asymmetric, per output channel) of every MatMul and the embedding;
activations and the matmuls stay fp32 after decompression, the recipe that kept the encoder's accuracy here.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from siliconlab.units.base import INT8_AGREEMENT_MIN, INT8_COSINE_MIN, Conversion, GenerativeUnit
from siliconlab.units.onnxruntime.decoder import ExplicitKvStepRunner, _cache_shape, export_decoder
from siliconlab.units.openvino.cpu import op_histogram, openvino_versions

if TYPE_CHECKING:
    from siliconlab.models.base import LoadedModel

ARTIFACT = "decoder.xml"


def convert_step_graph(model: LoadedModel, out_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Export the ONNX step graph, read it into an OpenVINO model and drop the ONNX file."""
    import openvino as ov

    onnx_path = out_dir / "exported-step.onnx"
    graph = export_decoder(model, onnx_path)
    converted = ov.convert_model(str(onnx_path))
    for path in out_dir.glob("exported-step.onnx*"):
        path.unlink()
    graph["format"] = "openvino IR (from the ONNX step graph)"
    return converted, graph


class OpenVinoDecoderRunner(ExplicitKvStepRunner):
    """The step graph compiled by OpenVINO (prefill/decode_step shared with ONNX Runtime's runner)."""

    def __init__(self, path: Path, threads: int, max_length: int, layers: int, kv_heads: int, head_dim: int):
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.max_length = max_length
        self.shape = (layers, kv_heads, head_dim)
        self.past_names = [port.get_any_name() for port in self.compiled.inputs][2:]
        self.outputs = list(self.compiled.outputs)

    def _run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        result = self.request.infer(feeds)  # outputs are copied out (share_outputs=False): safe to keep
        logits, *present = (result[port] for port in self.outputs)
        return np.asarray(logits, dtype=np.float32), present


class OpenVinoCpuDecoder(GenerativeUnit):
    name = "openvino-cpu-fp32"
    engine = "openvino"
    device = "cpu"
    precision = "fp32"
    requires: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "torch", "transformers")
    recipe = "decoder-explicit-kv-1"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import openvino as ov

        converted, graph = convert_step_graph(model, out_dir)
        ov.save_model(converted, str(out_dir / ARTIFACT), compress_to_fp16=False)
        graph["ops"] = op_histogram(converted)
        return Conversion(graph=graph, library_versions=openvino_versions())

    def load(self, artifact_dir: Path, threads: int) -> OpenVinoDecoderRunner:
        from transformers import AutoConfig

        from siliconlab.models.generative import context_length

        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        path = artifact_dir / ARTIFACT
        return OpenVinoDecoderRunner(path, threads, context_length(config), *_cache_shape(config))


class OpenVinoCpuInt8Decoder(OpenVinoCpuDecoder):
    name = "openvino-cpu-int8"
    precision = "int8"
    compute_precision = "fp32"  # int8 weights, decompressed into fp32 matmuls
    agreement_min = INT8_AGREEMENT_MIN
    cosine_min = INT8_COSINE_MIN
    exact_free_run = False
    requires = ("openvino", "onnx", "nncf", "torch", "transformers")
    recipe = "decoder-nncf-int8-asym-1"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import nncf
        import openvino as ov

        nncf.set_log_level(logging.ERROR)  # its bit-width table would land in the middle of our output
        converted, graph = convert_step_graph(model, out_dir)
        with contextlib.redirect_stdout(io.StringIO()):  # nncf draws a progress bar on stdout
            compressed = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(compressed, str(out_dir / ARTIFACT), compress_to_fp16=False)
        graph["ops"] = op_histogram(compressed)
        graph["quantization"] = "int8 weights (asymmetric, per output channel, nncf.compress_weights), fp32 compute"
        return Conversion(graph=graph, library_versions=openvino_versions() | {"nncf": nncf.__version__})
