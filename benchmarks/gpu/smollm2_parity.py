"""Where bf16 loses SmolLM2 accuracy: the generation gate (convert/parity_generate.py) for several GPU decoders.

Against the same fp32 CPU reference the product builds (6 chat prompts, 24 teacher-forced steps, 16 free-run
tokens): HF's own bf16 model on the GPU (eager forward, dynamic cache: the arithmetic a user gets from HF), the
Triton step with HF's rounding (`residual="model"`), the Triton step with an fp32 residual stream and logits
(`residual="fp32"`), fp16. Per decoder: agreement, worst cosine at the prefill's logits and at decode steps,
free run, and decode tokens/s at batch 1 (32-token prompt, 128 new tokens, a timestamp per token).

  PYTHONPATH=src python3 smollm2_parity.py [MODEL]   (MODEL: smollm2-chat by default, or a local folder)
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

import numpy as np
import torch

from siliconlab.bench.generate import prompt_ids
from siliconlab.convert.parity_generate import check_generation_parity, reference_generation, teacher_forced
from siliconlab.models import resolve
from siliconlab.units.base import GreedyDecoderMixin
from siliconlab.units.torch.cuda_decoder import MAX_LEN, GraphDecoderRunner
from siliconlab.units.torch.cuda_generate import CudaGraphGenerator


class HFCudaRunner(GreedyDecoderMixin):
    """HF's model on the GPU, eager, dynamic cache: prefill/decode_step for the teacher-forced check."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.max_length = model, MAX_LEN

    def _forward(self, ids: np.ndarray, cache: object) -> tuple[np.ndarray, object]:
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(ids).cuda(), past_key_values=cache, use_cache=True)
        return out.logits[:, -1, :].float().cpu().numpy(), out.past_key_values

    def prefill(self, input_ids: np.ndarray) -> tuple[np.ndarray, object]:
        from transformers import DynamicCache

        return self._forward(np.ascontiguousarray(input_ids, dtype=np.int64), DynamicCache())

    def decode_step(self, token_ids: np.ndarray, cache: object) -> tuple[np.ndarray, object]:
        return self._forward(np.asarray(token_ids, dtype=np.int64).reshape(-1, 1), cache)


def decode_rate(runner: GraphDecoderRunner, ids: np.ndarray) -> float:
    rates = []
    for _ in range(4):
        stamps: list[float] = []
        runner.generate(ids, 128, lambda _t, s=stamps: s.append(time.perf_counter()))
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return statistics.median(rates[1:])


def main() -> None:
    loaded = resolve(sys.argv[1] if len(sys.argv) > 1 else "smollm2-chat").load()
    reference = reference_generation(loaded)
    steps = len(reference.continuations[0])
    ids = prompt_ids(loaded.tokenizer, int(loaded.config.vocab_size), 1, 32)

    def graph(dtype: torch.dtype, **options: object) -> GraphDecoderRunner:
        model = copy.deepcopy(loaded.model)
        gen = CudaGraphGenerator(model, dtype=dtype, max_batch=8, max_len=MAX_LEN, fuse="triton", step_options=options)
        return GraphDecoderRunner(gen, MAX_LEN)

    decoders = {
        "HF bf16 eager (GPU)": lambda: HFCudaRunner(copy.deepcopy(loaded.model).to("cuda", torch.bfloat16).eval()),
        "Triton step bf16, HF rounding": lambda: graph(torch.bfloat16, residual="model"),
        "Triton step bf16, fp32 residual+logits": lambda: graph(torch.bfloat16, residual="fp32"),
        "Triton step fp16, HF rounding": lambda: graph(torch.float16, residual="model"),
        "Triton step fp16, fp32 residual+logits": lambda: graph(torch.float16, residual="fp32"),
        "Triton step fp16 + PDL + 2-stage argmax": lambda: graph(torch.float16, pdl=True, argmax="triton"),
        "Triton step bf16 fp32 res. + PDL + argmax": lambda: graph(
            torch.bfloat16, residual="fp32", pdl=True, argmax="triton"
        ),
        "Triton step fp32 + PDL + 2-stage argmax": lambda: graph(torch.float32, pdl=True, argmax="triton"),
    }
    print(f"{'decoder':42s} {'agree':>7s} {'cos min':>9s} {'prefill min':>11s} {'decode min':>10s} "
          f"{'cos median':>10s} {'free run':>8s} {'tok/s b1':>9s}", flush=True)  # fmt: skip
    for name, build in decoders.items():
        runner = build()
        fp32 = "fp32 +" in name
        parity = check_generation_parity(runner, reference, 1.0 if fp32 else 0.98, 0.99999 if fp32 else 0.999, fp32)
        _, cosines = teacher_forced(runner, reference)
        prefill = min(c for i, c in enumerate(cosines) if i % steps == 0)
        decode = min(c for i, c in enumerate(cosines) if i % steps != 0)
        rate = decode_rate(runner, ids) if isinstance(runner, GraphDecoderRunner) else float("nan")
        print(f"{name:42s} {parity.agreement:7.1%} {parity.cosine_min:9.6f} {prefill:11.6f} {decode:10.6f} "
              f"{parity.cosine_median:10.7f} {parity.free_run_match:8.0%} {rate:9.1f} "
              f"{'passes' if parity.passed else 'fails'}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
