"""ONNX Runtime CPU decoders: a causal LM exported with explicit past key/values; fp32, dynamic int8, int4.

The exported graph is one step of any length: (input_ids [b, s], position_ids [b, s], past k/v per layer
[b, kv_heads, p, head_dim]) -> (logits of the last position [b, vocab], present k/v [.., p + s, ..]). Prefill
is the step with an empty past (p = 0), decode the step with s = 1; the cache lives in numpy between calls.
The TorchScript exporter traces a wrapper that rebuilds Hugging Face's DynamicCache from the past tensors,
with eager attention (the causal mask with a past is built from shapes, so it stays dynamic).
int8 is onnxruntime's dynamic quantization of every MatMul weight (per channel; activations quantized per
call), the engine's stock recipe for a small LLM on a CPU. int4 is weight-only: every MatMul becomes
onnxruntime's MatMulNBits (4-bit weights in blocks of 32 along K, one fp32 scale per block, symmetric), the
format llama.cpp's Q4 files use. Decoding one token reads every weight once, so weights at an eighth of their
fp32 bytes make batch-1 decode faster on a CPU.
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.base import INT8_AGREEMENT_MIN, Conversion, GenerativeUnit, GreedyDecoderMixin

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import LoadedModel

ARTIFACT = "decoder.onnx"
OPSET = 17


def _cache_shape(config: Any) -> tuple[int, int, int]:
    """(layers, kv heads, head dim) of a Llama-style or GPT-2 config."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return int(layers), int(kv_heads), int(head_dim)


def _wrapper(model: torch.nn.Module, layers: int) -> torch.nn.Module:
    import torch
    from transformers import DynamicCache

    from siliconlab.units.torch.cpu_generate import cache_argument

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, *past: torch.Tensor) -> Any:
            cache = DynamicCache()
            for layer in range(layers):
                cache.update(past[2 * layer], past[2 * layer + 1], layer)
            out = self.model(input_ids=input_ids, position_ids=position_ids, use_cache=True,
                             **{cache_argument(self.model): cache})  # fmt: skip
            grown = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            presents = []
            for layer in grown.layers:
                presents += [layer.keys, layer.values]
            return (out.logits[:, -1, :], *presents)

    return DecoderWithPast().eval()


def export_decoder(model: LoadedModel, path: Path) -> dict[str, Any]:
    """Trace the step wrapper on a 2-token step over a 3-token past; every length axis is dynamic."""
    import torch

    module = model.model
    if hasattr(module, "set_attn_implementation"):
        module.set_attn_implementation("eager")
    layers, kv_heads, head_dim = _cache_shape(model.config)
    wrapper = _wrapper(module, layers)
    ids = torch.ones((1, 2), dtype=torch.int64)
    positions = torch.tensor([[3, 4]], dtype=torch.int64)
    past = [torch.zeros((1, kv_heads, 3, head_dim)) for _ in range(2 * layers)]
    past_names = [f"past.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
                                       "logits": {0: "batch"}}  # fmt: skip
    axes.update({name: {0: "batch", 2: "past"} for name in past_names})
    axes.update({name: {0: "batch", 2: "total"} for name in present_names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (ids, positions, *past), str(path), input_names=["input_ids", "position_ids",
                          *past_names], output_names=["logits", *present_names], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)  # fmt: skip
    return {"layers": layers, "kv_heads": kv_heads, "head_dim": head_dim, "format": "onnx", "opset": OPSET,
            "cache": "explicit past/present tensors"}  # fmt: skip


class ExplicitKvStepRunner(GreedyDecoderMixin, ABC):
    """prefill/decode_step over the exported step graph, whatever engine runs it: the cache is (past tensors,
    positions so far), prefill is the step with an empty past. An engine supplies `_run` (feeds -> logits,
    present) and sets `shape` = (layers, kv heads, head dim) and `past_names`."""

    shape: tuple[int, int, int]
    past_names: list[str]

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One step of the graph: logits of the last position and the present k/v tensors."""

    def _step(self, ids: np.ndarray, past: list[np.ndarray], start: int) -> tuple[np.ndarray, Any]:
        batch, seq = ids.shape
        positions = np.broadcast_to(np.arange(start, start + seq, dtype=np.int64), (batch, seq))
        feeds = {"input_ids": ids, "position_ids": np.ascontiguousarray(positions)}
        feeds.update(zip(self.past_names, past))
        logits, present = self._run(feeds)
        return logits, (present, start + seq)

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        layers, kv_heads, head_dim = self.shape
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        empty = np.zeros((ids.shape[0], kv_heads, 0, head_dim), dtype=np.float32)
        return self._step(ids, [empty] * (2 * layers), 0)

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        past, start = cache
        return self._step(np.asarray(token_ids, dtype=np.int64).reshape(-1, 1), past, start)


class OrtDecoderRunner(ExplicitKvStepRunner):
    """The step graph in an ONNX Runtime session."""

    def __init__(self, path: Path, threads: int, max_length: int, layers: int, kv_heads: int, head_dim: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.max_length = max_length
        self.shape = (layers, kv_heads, head_dim)
        self.past_names = [i.name for i in self.session.get_inputs()][2:]

    def _run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        logits, *present = self.session.run(None, feeds)
        return logits, present


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


class OnnxRuntimeCpuDecoder(GenerativeUnit):
    name = "onnxruntime-cpu-fp32"
    engine = "onnxruntime"
    device = "cpu"
    precision = "fp32"
    requires = ("onnxruntime", "onnx", "torch", "transformers")
    recipe = "decoder-1"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        graph = export_decoder(model, out_dir / ARTIFACT)
        return Conversion(graph=graph, library_versions=_versions())

    def load(self, artifact_dir: Path, threads: int) -> OrtDecoderRunner:
        from transformers import AutoConfig

        from siliconlab.models.generative import context_length

        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        return OrtDecoderRunner(artifact_dir / ARTIFACT, threads, context_length(config), *_cache_shape(config))


class OnnxRuntimeCpuInt8Decoder(OnnxRuntimeCpuDecoder):
    name = "onnxruntime-cpu-int8"
    precision = "int8"
    compute_precision = "int8"
    agreement_min = INT8_AGREEMENT_MIN
    cosine_min = 0.99
    exact_free_run = False
    recipe = "decoder-int8-dynamic-2"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        raw = out_dir / "exported-fp32.onnx"
        graph = export_decoder(model, raw)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
        try:
            # reduce_range (7-bit weights): on AVX2 CPUs without VNNI, u8 x s8 products accumulate through
            # saturating int16 (vpmaddubsw); full-range weights gave SmolLM2 2 % argmax agreement here.
            quantize_dynamic(str(raw), str(out_dir / ARTIFACT), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, op_types_to_quantize=["MatMul"])  # fmt: skip
        finally:
            root.setLevel(level)
        raw.unlink()
        for extra in out_dir.glob("exported-fp32.onnx*"):
            extra.unlink()
        graph["quantization"] = "dynamic int8, per-channel MatMul weights (onnxruntime.quantization)"
        return Conversion(graph=graph, library_versions=_versions())


#: MatMulNBits settings (onnxruntime.quantization.matmul_nbits_quantizer). Block 32 as llama.cpp's Q4 blocks
#: (block 128 lost every greedy token on a SmolLM2 test prompt). accuracy_level 4: activations are quantized to
#: int8 per block for the dot products, MLAS's fastest CPU path (level 1, fp32 compute, decoded SmolLM2 1.7x
#: slower here; benchmarks/generate/weight_only_recipes.py).
INT4_BLOCK = 32
INT4_ACCURACY_LEVEL = 4


class OnnxRuntimeCpuInt4Decoder(OnnxRuntimeCpuDecoder):
    """Weight-only 4-bit MatMuls (the fp32 step graph, then MatMulNBits); gated on greedy agreement like int8.
    Its worst-step logit cosine bound is 0.95, not int8's 0.99: 4-bit weights move the logits by a few percent
    where the argmax, which is what a greedy reply is made of, can still agree. On SmolLM2-135M the gate rejects
    it (66.7 % agreement: docs/generate.md); it passes on the tiny test Llama."""

    name = "onnxruntime-cpu-int4"
    precision = "int4"
    compute_precision = "int8"
    agreement_min = INT8_AGREEMENT_MIN
    cosine_min = 0.95
    exact_free_run = False
    recipe = f"decoder-int4-matmulnbits-b{INT4_BLOCK}-a{INT4_ACCURACY_LEVEL}-1"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        raw = out_dir / "exported-fp32.onnx"
        graph = export_decoder(model, raw)
        config = DefaultWeightOnlyQuantConfig(block_size=INT4_BLOCK, is_symmetric=True,
                                              accuracy_level=INT4_ACCURACY_LEVEL, bits=4)  # fmt: skip
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs every MatMul it converts on the root logger
        try:
            quantizer = MatMulNBitsQuantizer(onnx.load(str(raw)), bits=4, block_size=INT4_BLOCK, is_symmetric=True,
                                             accuracy_level=INT4_ACCURACY_LEVEL, algo_config=config)  # fmt: skip
            quantizer.process()
            quantized = quantizer.model.model
        finally:
            root.setLevel(level)
        onnx.save_model(quantized, str(out_dir / ARTIFACT))
        raw.unlink()
        for extra in out_dir.glob("exported-fp32.onnx*"):
            extra.unlink()
        converted = sum(node.op_type == "MatMulNBits" for node in quantized.graph.node)
        left = sum(node.op_type == "MatMul" for node in quantized.graph.node)
        graph["quantization"] = (f"weight-only int4 (MatMulNBits, block {INT4_BLOCK}, symmetric, accuracy level "
                                 f"{INT4_ACCURACY_LEVEL}): {converted} MatMuls; {left} activation x activation "
                                 "MatMuls (attention) stay fp32")  # fmt: skip
        return Conversion(graph=graph, library_versions=_versions())
