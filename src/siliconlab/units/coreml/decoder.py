"""coreml-gpu for decoders: a Llama-family causal LM as one Core ML ML Program with a stateful KV cache.

Core ML (iOS 18 / macOS 15) keeps model state between predictions: the key and value caches are two fp16
states [layers, 1, kv_heads, max_len, head_dim] that the program reads and updates in place (coremltools'
`ct.StateType`), so a decode step sends one token and no cache crosses the API. The traced module
(`StatefulLlama`) reuses the Hugging Face model's own layers and weights; it takes `input_ids` [1, q] and an
additive `causal_mask` [1, 1, q, end] whose last axis tells how many positions are filled after the step
(Apple's recipe: both axes are RangeDims, so one program serves the prefill and each decode step), and
returns the logits of the last position [1, vocab]. fp16 compute on CPU_AND_GPU (Core ML states are fp16
only), gated at the fp16 thresholds. A batch of prompts runs row by row, one state per row.

Conversion runs wherever coremltools installs (Linux here); prediction needs macOS 15+. Where it cannot
predict, `check_converted` runs the traced module in PyTorch through the same runner code — the same inputs,
the same in-place cache — against the fp32 gate, and `check_structure` reads the saved spec.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.base import (
    HALF_AGREEMENT_MIN,
    HALF_COSINE_MIN,
    Availability,
    Conversion,
    GenerativeUnit,
    GreedyDecoderMixin,
)
from siliconlab.units.coreml import MIN_MACOS, PREDICTION_NEEDS_MACOS, _macos_version

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import HfModule, LoadedModel

PACKAGE = "decoder.mlpackage"
#: The cache's length is fixed at conversion: the model's context, capped so the states stay small.
MAX_CACHE = 2048
MASK_VALUE = -1e4  # finite in fp16, and exp() of it underflows to 0


def stateful_llama(model: HfModule, max_len: int) -> HfModule:
    """The traceable module: Hugging Face Llama layers around a KV cache held in two registered buffers (read by
    name: `keyCache`, `valueCache`)."""
    import torch

    class StatefulLlama(torch.nn.Module):
        #: registered buffers (torch types module attributes loosely): the cache and the rotary tables
        keyCache: torch.Tensor  # noqa: N815 - the Core ML state's name
        valueCache: torch.Tensor  # noqa: N815
        cos: torch.Tensor
        sin: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            config = model.config
            self.lm = model
            self.heads = config.num_attention_heads
            self.kv_heads = config.num_key_value_heads or self.heads
            self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
            shape = (config.num_hidden_layers, 1, self.kv_heads, max_len, self.head_dim)
            self.register_buffer("keyCache", torch.zeros(shape))
            self.register_buffer("valueCache", torch.zeros(shape))
            rotary = model.model.rotary_emb
            positions = torch.arange(max_len, dtype=torch.float32)
            freqs = torch.outer(positions, rotary.inv_freq.float())
            angles = torch.cat([freqs, freqs], dim=-1)
            self.register_buffer("cos", angles.cos() * rotary.attention_scaling, persistent=False)
            self.register_buffer("sin", angles.sin() * rotary.attention_scaling, persistent=False)

        @staticmethod
        def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            half = x.shape[-1] // 2
            return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

        def forward(self, input_ids: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
            steps, end = input_ids.shape[1], causal_mask.shape[-1]
            past = end - steps
            cos, sin = self.cos[past:end], self.sin[past:end]
            x = self.lm.model.embed_tokens(input_ids)
            groups = self.heads // self.kv_heads
            for index, layer in enumerate(self.lm.model.layers):
                attn, h = layer.self_attn, layer.input_layernorm(x)
                q = attn.q_proj(h).view(1, steps, self.heads, self.head_dim).transpose(1, 2)
                k = attn.k_proj(h).view(1, steps, self.kv_heads, self.head_dim).transpose(1, 2)
                v = attn.v_proj(h).view(1, steps, self.kv_heads, self.head_dim).transpose(1, 2)
                q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
                self.keyCache[index : index + 1, :, :, past:end, :] = k.unsqueeze(0)
                self.valueCache[index : index + 1, :, :, past:end, :] = v.unsqueeze(0)
                keys, values = self.keyCache[index, :, :, :end, :], self.valueCache[index, :, :, :end, :]
                if groups > 1:  # grouped-query heads: each kv head serves `groups` query heads
                    keys = keys[:, :, None].expand(1, self.kv_heads, groups, end, self.head_dim).reshape(
                        1, self.heads, end, self.head_dim)  # fmt: skip
                    values = values[:, :, None].expand(1, self.kv_heads, groups, end, self.head_dim).reshape(
                        1, self.heads, end, self.head_dim)  # fmt: skip
                out = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=causal_mask)
                x = x + attn.o_proj(out.transpose(1, 2).reshape(1, steps, self.heads * self.head_dim))
                x = x + layer.mlp(layer.post_attention_layernorm(x))
            return self.lm.lm_head(self.lm.model.norm(x[:, -1, :]))

    return StatefulLlama().eval()


def causal_mask(steps: int, end: int) -> np.ndarray:
    """Additive mask [1, 1, steps, end]: query i (at position end - steps + i) sees keys 0..end - steps + i."""
    rows = np.arange(end - steps, end)[:, None]
    return np.where(np.arange(end)[None, :] <= rows, 0.0, MASK_VALUE).astype(np.float32)[None, None]


class StatefulDecoderRunner(GreedyDecoderMixin):
    """prefill/decode_step over a stateful step program; the cache is (one state per batch row, filled length).

    `predict(inputs, state)` and `new_state()` are the engine: Core ML's MLModel on macOS, or the traced PyTorch
    module (`TorchStatefulEngine`) where Core ML cannot predict."""

    def __init__(self, engine: Any, max_length: int):
        self.engine = engine
        self.max_length = max_length

    def _step(self, ids: np.ndarray, states: list[Any], start: int) -> tuple[np.ndarray, Any]:
        steps = ids.shape[1]
        if start + steps > self.max_length:
            raise ValueError(f"the KV cache holds {self.max_length} positions; this step would need {start + steps}")
        mask = causal_mask(steps, start + steps)
        rows = [self.engine.predict({"input_ids": row[None].astype(np.int32), "causal_mask": mask}, state)
                for row, state in zip(ids, states)]  # fmt: skip
        return np.concatenate(rows).astype(np.float32), (states, start + steps)

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        ids = np.asarray(input_ids, dtype=np.int64)
        return self._step(ids, [self.engine.new_state() for _ in range(ids.shape[0])], 0)

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """The cache is consumed: Core ML updates its states in place."""
        states, start = cache
        return self._step(np.asarray(token_ids, dtype=np.int64).reshape(-1, 1), states, start)


class CoreMLEngine:
    """macOS 15+: the ML Program with its states (MLModel.make_state / predict(state=...))."""

    def __init__(self, package: Path, compute_unit: str):
        import coremltools as ct

        self.model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, compute_unit))

    def new_state(self) -> Any:
        return self.model.make_state()

    def predict(self, inputs: dict[str, np.ndarray], state: Any) -> np.ndarray:
        feeds = {
            "input_ids": inputs["input_ids"],
            "causal_mask": inputs["causal_mask"].astype(np.float16),
        }  # as declared
        return np.asarray(self.model.predict(feeds, state=state)["logits"], dtype=np.float32).reshape(1, -1)


class TorchStatefulEngine:
    """The traced module in PyTorch fp32, each state a pair of cache tensors swapped into its buffers."""

    def __init__(self, module: HfModule):
        self.module = module

    def new_state(self) -> dict[str, torch.Tensor]:
        return {"keyCache": self.module.keyCache.clone().zero_(), "valueCache": self.module.valueCache.clone().zero_()}

    def predict(self, inputs: dict[str, np.ndarray], state: dict[str, torch.Tensor]) -> np.ndarray:
        import torch

        self.module.keyCache, self.module.valueCache = state["keyCache"], state["valueCache"]
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(inputs["input_ids"]).long(), torch.from_numpy(inputs["causal_mask"]))
        return logits.numpy()


def convert_stateful(model: LoadedModel, package: Path, max_len: int) -> dict[str, Any]:
    """Trace the stateful module on a 3-token step over a 2-token past and convert it (fp16, macOS 15)."""
    import coremltools as ct
    import torch

    module = stateful_llama(model.model, max_len)
    example = (torch.ones((1, 3), dtype=torch.int64), torch.from_numpy(causal_mask(3, 5)))
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
    steps = ct.RangeDim(lower_bound=1, upper_bound=max_len, default=1)
    end = ct.RangeDim(lower_bound=1, upper_bound=max_len, default=1)
    inputs = [ct.TensorType(name="input_ids", shape=(1, steps), dtype=np.int32),
              ct.TensorType(name="causal_mask", shape=(1, 1, steps, end), dtype=np.float16)]  # fmt: skip
    states = [ct.StateType(wrapped_type=ct.TensorType(shape=tuple(module.keyCache.shape), dtype=np.float16), name=n)
              for n in ("keyCache", "valueCache")]  # fmt: skip
    outputs = [ct.TensorType(name="logits", dtype=np.float16)]
    converted = ct.convert(traced, inputs=inputs, states=states, outputs=outputs,
                           minimum_deployment_target=ct.target.macOS15, compute_precision=ct.precision.FLOAT16,
                           skip_model_load=sys.platform != "darwin")  # fmt: skip
    converted.save(str(package))
    layers, _, kv_heads, _, head_dim = module.keyCache.shape
    return {"format": "mlprogram", "deployment_target": "macOS15", "compute_precision": "fp16",
            "cache": f"stateful fp16 KV (ct.StateType), {max_len} positions", "layers": int(layers),
            "kv_heads": int(kv_heads), "head_dim": int(head_dim), "max_len": max_len}  # fmt: skip


def read_spec(package: Path) -> dict[str, Any]:
    """Inputs, outputs, states and spec version of a saved package, read without Core ML."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    description = spec.description
    states = {s.name: list(s.type.stateType.arrayType.shape) for s in description.state}
    ops: dict[str, int] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type in ("read_state", "write_state", "slice_update", "scaled_dot_product_attention"):
                    ops[op.type] = ops.get(op.type, 0) + 1
    return {"spec_version": spec.specificationVersion, "inputs": [i.name for i in description.input],
            "outputs": [o.name for o in description.output], "states": states, "ops": ops}  # fmt: skip


class CoreMLGpuDecoder(GenerativeUnit):
    name = "coreml-gpu"
    engine = "coreml"
    device = "gpu"
    precision = "fp16"
    compute_unit = "CPU_AND_GPU"
    agreement_min = HALF_AGREEMENT_MIN
    cosine_min = HALF_COSINE_MIN
    exact_free_run = False
    requires = ("coremltools", "torch", "transformers")
    recipe = "decoder-stateful-1"

    def availability(self) -> Availability:
        if sys.platform != "darwin":
            return Availability.no(PREDICTION_NEEDS_MACOS)
        return super().availability()

    def platform_availability(self) -> Availability:
        version = _macos_version()
        if version and version < MIN_MACOS:
            return Availability.no(f"stateful models need macOS {MIN_MACOS[0]}+, found {version}")
        return Availability.yes()

    def conversion_availability(self) -> Availability:
        return self.package_availability()  # coremltools converts on Linux too

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        import coremltools
        import torch

        from siliconlab.models.generative import context_length

        if getattr(model.config, "model_type", "") != "llama":
            raise ValueError(
                f"the stateful Core ML decoder is built for Llama-family models, not {model.config.model_type}"
            )
        max_len = min(context_length(model.config), MAX_CACHE)
        graph = convert_stateful(model, out_dir / PACKAGE, max_len)
        return Conversion(graph=graph, library_versions={"coremltools": coremltools.__version__,
                          "torch": torch.__version__.split("+")[0]},  # fmt: skip
                          converted_module=stateful_llama(model.model, max_len))  # fmt: skip

    def check_structure(self, artifact_dir: Path, model: LoadedModel) -> dict[str, Any]:
        """The spec has both cache states at the expected shape, the two inputs and the logits output."""
        spec = read_spec(artifact_dir / PACKAGE)
        layers, kv_heads, head_dim = (model.config.num_hidden_layers,
                                      model.config.num_key_value_heads or model.config.num_attention_heads,
                                      model.config.hidden_size // model.config.num_attention_heads)  # fmt: skip
        want = [layers, 1, kv_heads, min(model.max_length, MAX_CACHE), head_dim]
        if spec["states"] != {"keyCache": want, "valueCache": want}:
            raise ValueError(f"unexpected states {spec['states']}, expected keyCache/valueCache {want}")
        if spec["inputs"] != ["input_ids", "causal_mask"] or spec["outputs"] != ["logits"]:
            raise ValueError(f"unexpected interface {spec['inputs']} -> {spec['outputs']}")
        if spec["ops"].get("write_state", 0) != 2 * layers:  # each layer writes its keys and its values
            raise ValueError(f"expected {2 * layers} cache writes, found {spec['ops']}")
        if spec["spec_version"] < 9:  # states came with spec 9 (iOS 18 / macOS 15)
            raise ValueError(f"spec version {spec['spec_version']} has no states")
        return spec

    def converted_runner(self, conversion: Conversion) -> StatefulDecoderRunner:
        return StatefulDecoderRunner(TorchStatefulEngine(conversion.converted_module), conversion.graph["max_len"])

    def load(self, artifact_dir: Path, threads: int) -> StatefulDecoderRunner:
        import json

        from siliconlab.models.generative import context_length

        config = type("Config", (), json.loads((artifact_dir / "config.json").read_text()))
        engine = CoreMLEngine(artifact_dir / PACKAGE, self.compute_unit)
        return StatefulDecoderRunner(engine, min(context_length(config), MAX_CACHE))
