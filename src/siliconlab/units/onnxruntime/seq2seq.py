"""onnxruntime-cpu-fp32 for encoder-decoder models (T5): an encoder graph and a decoder step graph with past.

encoder.onnx: input_ids [b, s] -> encoder_states [b, s, d_model], run once per prompt.
decoder.onnx: (decoder_input_ids [b, q], encoder_states, past self-attention k/v per layer [b, heads, p, d_kv])
-> (logits of the last position [b, vocab], present self-attention k/v [.., p + q, ..]). prefill = the encoder
plus the decoder step from the start token with an empty past; decode = the step with one token. The
cross-attention keys/values are recomputed from the encoder states in every step (two small matmuls per layer
over the prompt) so the step graph has one shape of past; the self-attention cache lives in numpy, as in the
causal ONNX decoder (units/onnxruntime/decoder.py). Exported with the TorchScript exporter and eager attention
(T5's relative position bias with a past is computed from shapes, so it stays dynamic; the parity gate checks
prefill and every decode length).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.base import Conversion, GenerativeUnit, GreedyDecoderMixin
from siliconlab.units.onnxruntime.decoder import OPSET, _versions

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import HfModule, LoadedModel

ENCODER, DECODER = "encoder.onnx", "decoder.onnx"


def _shape(config: Any) -> tuple[int, int, int]:
    """(decoder layers, heads, d_kv) of a T5 config."""
    return int(config.num_decoder_layers or config.num_layers), int(config.num_heads), int(config.d_kv)


def _wrappers(model: HfModule, layers: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    from siliconlab.units.torch.cpu_generate import cache_argument

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.model.get_encoder()(input_ids=input_ids).last_hidden_state

    class DecoderStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids: torch.Tensor, encoder_states: torch.Tensor, *past: torch.Tensor) -> Any:
            own = DynamicCache()
            for layer in range(layers):
                own.update(past[2 * layer], past[2 * layer + 1], layer)
            cache = EncoderDecoderCache(own, DynamicCache())  # cross k/v: recomputed from encoder_states
            out = self.model(encoder_outputs=(encoder_states,), decoder_input_ids=decoder_input_ids, use_cache=True,
                             **{cache_argument(self.model): cache})  # fmt: skip
            grown = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            presents = []
            for layer in grown.self_attention_cache.layers:
                presents += [layer.keys, layer.values]
            return (out.logits[:, -1, :], *presents)

    return Encoder().eval(), DecoderStep().eval()


def export_seq2seq(model: LoadedModel, out_dir: Path) -> dict[str, Any]:
    """Trace the encoder on a 5-token prompt and the decoder on a 2-token step over a 3-token past."""
    import torch

    module = model.model
    module.set_attn_implementation("eager")
    layers, heads, d_kv = _shape(model.config)
    encoder, decoder = _wrappers(module, layers)
    ids = torch.ones((1, 5), dtype=torch.int64)
    past = [torch.zeros((1, heads, 3, d_kv)) for _ in range(2 * layers)]
    past_names = [f"past.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present_names = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    axes: dict[str, dict[int, str]] = {"decoder_input_ids": {0: "batch", 1: "steps"}, "logits": {0: "batch"},
                                       "encoder_states": {0: "batch", 1: "source"}}  # fmt: skip
    axes.update({name: {0: "batch", 2: "past"} for name in past_names})
    axes.update({name: {0: "batch", 2: "total"} for name in present_names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        states = encoder(ids)
        torch.onnx.export(encoder, (ids,), str(out_dir / ENCODER), input_names=["input_ids"],
                          output_names=["encoder_states"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "source"},
                                        "encoder_states": {0: "batch", 1: "source"}})  # fmt: skip
        torch.onnx.export(decoder, (ids[:, :2], states, *past), str(out_dir / DECODER),
                          input_names=["decoder_input_ids", "encoder_states", *past_names],
                          output_names=["logits", *present_names], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)  # fmt: skip
    return {"layers": layers, "heads": heads, "d_kv": d_kv, "format": "onnx", "opset": OPSET,
            "graphs": "encoder + decoder step",
            "cache": "explicit self-attention past/present; cross k/v per step"}  # fmt: skip


class OrtSeq2SeqRunner(GreedyDecoderMixin):
    """prefill (encoder + first decoder step) / decode_step; the cache is (encoder states, past, length)."""

    def __init__(self, folder: Path, threads: int, max_length: int, start_id: int, shape: tuple[int, int, int]):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(folder / ENCODER), options, providers=providers)
        self.decoder = ort.InferenceSession(str(folder / DECODER), options, providers=providers)
        self.past_names = [i.name for i in self.decoder.get_inputs()][2:]
        self.max_length, self.start_id, self.shape = max_length, start_id, shape

    def _step(self, ids: np.ndarray, states: np.ndarray, past: list[np.ndarray]) -> tuple[np.ndarray, Any]:
        feeds = {"decoder_input_ids": ids, "encoder_states": states, **dict(zip(self.past_names, past))}
        logits, *present = self.decoder.run(None, feeds)
        return logits, (states, present)

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        layers, heads, d_kv = self.shape
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        (states,) = self.encoder.run(None, {"input_ids": ids})
        empty = np.zeros((ids.shape[0], heads, 0, d_kv), dtype=np.float32)
        start = np.full((ids.shape[0], 1), self.start_id, dtype=np.int64)
        return self._step(start, states, [empty] * (2 * layers))

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        states, past = cache
        return self._step(np.asarray(token_ids, dtype=np.int64).reshape(-1, 1), states, past)


class OnnxRuntimeCpuSeq2Seq(GenerativeUnit):
    name = "onnxruntime-cpu-fp32"
    engine = "onnxruntime"
    device = "cpu"
    precision = "fp32"
    kind = "seq2seq"
    requires = ("onnxruntime", "onnx", "torch", "transformers")
    recipe = "seq2seq-1"

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        return Conversion(graph=export_seq2seq(model, out_dir), library_versions=_versions())

    def load(self, artifact_dir: Path, threads: int) -> OrtSeq2SeqRunner:
        from transformers import AutoConfig, GenerationConfig

        from siliconlab.models.generative import context_length
        from siliconlab.units.torch.seq2seq_generate import decoder_start_id

        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        generation = GenerationConfig.from_model_config(config)
        start = decoder_start_id(config, generation)
        return OrtSeq2SeqRunner(artifact_dir, threads, context_length(config), start, _shape(config))
