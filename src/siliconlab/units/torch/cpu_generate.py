"""torch-cpu-fp32 for decoders: the Hugging Face causal LM as a user would run it — the generation baseline.

generate() is Hugging Face `generate` (greedy, static KV cache) with a streamer, so the baseline is the
library path a user would call; prefill()/decode_step() expose the same model step by step (a dynamic
cache) for teacher-forced parity and the bench's per-step timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.base import Conversion, GenerativeUnit, TokenCallback

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import HfModule, LoadedModel


class TorchDecoderRunner:
    """A `*ForCausalLM` module behind the DecoderRunner protocol."""

    def __init__(self, model: HfModule, max_length: int, static_cache: bool = True):
        self.model = model.eval()
        self.max_length = max_length
        self.static_cache = static_cache
        self.device = next(model.parameters()).device  # the CUDA seq2seq units reuse these runners on a GPU

    def ids(self, array: np.ndarray) -> torch.Tensor:
        """Token ids as an int64 tensor on the model's device."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(self.device)

    def _forward(self, ids: torch.Tensor, cache: Any) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=ids, **{cache_argument(self.model): cache}, use_cache=True, logits_to_keep=1)
        grown = getattr(out, "cache", None)
        return out.logits[:, -1, :].float().cpu().numpy(), grown if grown is not None else out.past_key_values

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        from transformers import DynamicCache

        return self._forward(self.ids(input_ids), DynamicCache())

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        return self._forward(self.ids(token_ids).reshape(-1, 1), cache)

    def full_logits(self, input_ids: np.ndarray) -> np.ndarray:
        """Logits at every position of one forward pass [batch, seq, vocab] (the teacher-forced reference)."""
        import torch

        with torch.inference_mode():
            return self.model(input_ids=self.ids(input_ids)).logits.float().cpu().numpy()

    def continuation_logits(self, prompt: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Logits predicting each of `tokens` [steps] after `prompt` [1, len], teacher-forced in one pass."""
        full = self.full_logits(np.concatenate([prompt, tokens[None, :-1]], axis=1))[0]
        return full[prompt.shape[1] - 1 :]

    def generate(self, input_ids: np.ndarray, max_new_tokens: int, on_token: TokenCallback | None = None) -> np.ndarray:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        stop = {"now": False}

        class Streamer(BaseStreamer):
            prompt_seen = False

            def put(self, value: torch.Tensor) -> None:
                if not self.prompt_seen:  # generate() first hands the streamer the prompt itself
                    self.prompt_seen = True
                    return
                if on_token is not None and on_token(value.reshape(-1).cpu().numpy().astype(np.int64)):
                    stop["now"] = True

            def end(self) -> None:
                return None

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), stop["now"], dtype=torch.bool, device=input_ids.device)

        ids = self.ids(input_ids)
        streamer = Streamer()  # put() gets one token per row each step, at any batch size
        with torch.inference_mode():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                min_new_tokens=0,
                do_sample=False,
                num_beams=1,
                cache_implementation="static" if self.static_cache else None,
                disable_compile=True,  # HF auto-compiles a static-cache generate on CUDA: time the model, not a compile
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([Stop()]),
                pad_token_id=_pad_id(self.model),
                eos_token_id=None,  # stopping is the caller's call (on_token), so bench lengths stay fixed
            )
        prompt_width = 1 if self.model.config.is_encoder_decoder else ids.shape[1]  # T5: the decoder start token
        return out[:, prompt_width:].cpu().numpy().astype(np.int64)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)


def cache_argument(model: Any) -> str:
    """The KV cache's keyword: `cache` in recent transformers 5 (which deprecates `past_key_values`), only
    `past_key_values` in earlier 5.x releases (5.17 on the GPU machine)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _pad_id(model: Any) -> int:
    config = model.generation_config
    for value in (config.pad_token_id, config.eos_token_id, 0):
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int):
            return value
    return 0


class TorchCpuFp32Decoder(GenerativeUnit):
    name = "torch-cpu-fp32"
    engine = "pytorch"
    device = "cpu"
    precision = "fp32"
    requires = ("torch", "transformers")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        model.model.save_pretrained(out_dir, safe_serialization=True)
        return Conversion(graph={"attention": "sdpa", "format": "safetensors", "generate": "HF generate, static cache"})

    def load(self, artifact_dir: Path, threads: int) -> TorchDecoderRunner:
        import torch

        from siliconlab.models.generative import _factory, context_length

        torch.set_num_threads(threads)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        model = _factory(config).from_pretrained(
            artifact_dir, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        return TorchDecoderRunner(model.eval(), context_length(config))
