"""torch-cpu-fp32 for encoder-decoder models (T5): the prompt is encoded once, then the decoder writes the reply.

Same name and role as the causal baseline (units/torch/cpu_generate.py): `generate` is Hugging Face `generate`
(greedy, static cache); prefill() runs the encoder and the decoder's first step (from the decoder start token),
so TTFT covers both, and decode_step() extends the decoder's self-attention cache by one token. The cache is
(encoder states, Hugging Face EncoderDecoderCache): cross-attention keys/values are computed on the first step
and reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder, TorchDecoderRunner, cache_argument

if TYPE_CHECKING:
    import torch

    from siliconlab.models.base import HfModule


def decoder_start_id(config: Any, generation_config: Any = None) -> int:
    """The token the decoder starts from, where Hugging Face generate looks for it (T5: its pad id, 0)."""
    for holder, key in ((generation_config, "decoder_start_token_id"), (config, "decoder_start_token_id"),
                        (config, "pad_token_id")):  # fmt: skip
        value = getattr(holder, key, None)
        if isinstance(value, int):
            return value
    return 0


class TorchSeq2SeqRunner(TorchDecoderRunner):
    """A `*ForConditionalGeneration` module behind the DecoderRunner protocol."""

    def __init__(self, model: HfModule, max_length: int, static_cache: bool = True):
        super().__init__(model, max_length, static_cache)
        self.start_id = decoder_start_id(model.config, model.generation_config)
        model.generation_config.decoder_start_token_id = self.start_id  # generate() needs it set explicitly

    def _decode(self, ids: torch.Tensor, states: torch.Tensor, cache: Any) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(encoder_outputs=(states,), decoder_input_ids=ids, use_cache=True,
                             **{cache_argument(self.model): cache})  # fmt: skip
        grown = getattr(out, "cache", None)
        return out.logits[:, -1, :].float().cpu().numpy(), (states, grown if grown is not None else out.past_key_values)

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, Any]:
        import torch
        from transformers import DynamicCache, EncoderDecoderCache

        ids = self.ids(input_ids)
        with torch.inference_mode():
            states = self.model.get_encoder()(input_ids=ids).last_hidden_state
        start = torch.full((ids.shape[0], 1), self.start_id, dtype=torch.int64, device=self.device)
        return self._decode(start, states, EncoderDecoderCache(DynamicCache(), DynamicCache()))

    def decode_step(self, token_ids: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        states, past = cache
        return self._decode(self.ids(token_ids).reshape(-1, 1), states, past)

    def continuation_logits(self, prompt: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Logits predicting each of `tokens` in one cache-free pass: the decoder fed [start, tokens[:-1]]."""
        import torch

        decoder_ids = np.concatenate([[self.start_id], tokens[:-1]]).astype(np.int64)[None, :]
        with torch.inference_mode():
            out = self.model(input_ids=self.ids(prompt), decoder_input_ids=self.ids(decoder_ids))
        return out.logits[0].float().cpu().numpy()


class TorchCpuFp32Seq2Seq(TorchCpuFp32Decoder):
    """The torch baseline for T5; registered under the "seq2seq" kind (units/registry.py)."""

    kind = "seq2seq"

    def load(self, artifact_dir: Path, threads: int) -> TorchSeq2SeqRunner:
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        from siliconlab.models.generative import context_length

        torch.set_num_threads(threads)
        config = AutoConfig.from_pretrained(artifact_dir, trust_remote_code=False)
        model = AutoModelForSeq2SeqLM.from_pretrained(
            artifact_dir, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        return TorchSeq2SeqRunner(model.eval(), context_length(config))
