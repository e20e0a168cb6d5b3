"""Parity for generation: teacher-forced, so one flipped near-tie does not derail the rest of the comparison.

The reference is the fresh fp32 PyTorch model: on fixed real prompts (chatterbot-corpus questions in the
model's chat template; seeded random ids for architecture-only models) it writes its greedy continuation,
and one full forward pass over prompt + continuation gives its logits at every step. The unit then prefills
the same prompt and is fed the *reference's* tokens one decode step at a time (its own KV cache path);
each step's argmax and logit cosine are compared with the reference's. fp32 units must agree on every step
and write the same first 16 tokens when free-running; reduced-precision units are gated by their unit's
`agreement_min` (docs/generate.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from siliconlab.models.base import LoadedModel
from siliconlab.progress import advance, expect
from siliconlab.units.base import DecoderRunner

PROMPTS = 6
STEPS = 24
FREE_RUN = 16


@dataclass
class GenerationReference:
    prompts: list[np.ndarray]  # each [1, prompt_len]
    continuations: list[np.ndarray]  # each [STEPS]: fp32 greedy tokens
    logits: list[np.ndarray]  # each [STEPS, vocab]: fp32 logits predicting continuation[i], teacher-forced


@dataclass
class GenerationParity:
    agreement: float
    cosine_min: float
    cosine_median: float
    free_run_match: float  # share of prompts whose first FREE_RUN free-run tokens equal the reference's
    free_run_prefix_min: int  # shortest run of identical leading tokens over the prompts
    agreement_min: float
    threshold: float
    exact_free_run: bool
    passed: bool
    prompts: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"teacher-forced argmax agreement {self.agreement:.1%} (needs >= {self.agreement_min:.0%}), "
            f"logit cosine min {self.cosine_min:.6f} (needs >= {self.threshold}), free run: "
            f"{self.free_run_match:.0%} of prompts identical for {FREE_RUN} tokens"
        )


def parity_prompts(model: LoadedModel, count: int = PROMPTS) -> list[np.ndarray]:
    """Real chat questions in the model's template; random ids (seeded) for a model without a tokenizer."""
    if model.tokenizer is None:
        rng = np.random.default_rng(1234)
        vocab = int(model.config.vocab_size)
        return [rng.integers(0, vocab, size=(1, int(n)), dtype=np.int64) for n in np.linspace(8, 32, count)]
    from siliconlab.data.chat import chat_questions, spread
    from siliconlab.models.generative import chat_prompt_ids

    texts = spread(chat_questions(), count)
    return [np.asarray([chat_prompt_ids(model.tokenizer, text)], dtype=np.int64) for text in texts]


def reference_generation(model: LoadedModel, steps: int = STEPS, count: int = PROMPTS) -> GenerationReference:
    """The fp32 model's greedy continuations (KV-cache loop) and its teacher-forced logits (one full pass)."""
    from siliconlab.models.kinds import generation_kind
    from siliconlab.units.base import GreedyDecoderMixin
    from siliconlab.units.torch.cpu_generate import TorchDecoderRunner
    from siliconlab.units.torch.seq2seq_generate import TorchSeq2SeqRunner

    base = TorchSeq2SeqRunner if generation_kind(model.config) == "seq2seq" else TorchDecoderRunner

    class Loop(GreedyDecoderMixin, base):  # type: ignore[valid-type, misc]
        pass  # a plain dynamic-cache loop: not the static-cache generate() the torch unit is checked on

    runner = Loop(model.model, model.max_length)
    prompts = parity_prompts(model, count)
    expect(len(prompts), "prompts")
    continuations, logits = [], []
    for prompt in prompts:
        tokens = GreedyDecoderMixin.generate(runner, prompt, steps)[0]
        continuations.append(tokens)
        logits.append(runner.continuation_logits(prompt, tokens))
        advance()
    return GenerationReference(prompts, continuations, logits)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64) + 1e-30))


def teacher_forced(runner: DecoderRunner, reference: GenerationReference) -> tuple[list[bool], list[float]]:
    """Per step: (argmax agrees with the reference's, logit cosine), feeding the reference's tokens."""
    agree, cosines = [], []
    expect(
        2 * len(reference.prompts), "prompt runs"
    )  # teacher-forced here, then a free run each (check_generation_parity)
    for prompt, tokens, ref in zip(reference.prompts, reference.continuations, reference.logits):
        logits, cache = runner.prefill(prompt)
        for step in range(len(tokens)):
            row = np.asarray(logits[0], dtype=np.float32)
            agree.append(int(row.argmax()) == int(ref[step].argmax()))
            cosines.append(_cosine(row, ref[step]))
            if step + 1 < len(tokens):
                logits, cache = runner.decode_step(tokens[step : step + 1], cache)
        advance()
    return agree, cosines


def check_generation_parity(
    runner: DecoderRunner,
    reference: GenerationReference,
    agreement_min: float,
    cosine_min: float,
    exact_free_run: bool,
) -> GenerationParity:
    agree, cosines = teacher_forced(runner, reference)
    prefixes = []
    for prompt, tokens in zip(reference.prompts, reference.continuations):
        count = min(FREE_RUN, len(tokens))
        free = runner.generate(prompt, count)[0]
        same = free[:count] == tokens[:count] if len(free) >= count else np.zeros(count, dtype=bool)
        prefixes.append(int(np.argmin(same)) if not same.all() else count)
        advance()
    agreement = float(np.mean(agree))
    free_match = float(np.mean([p >= min(FREE_RUN, len(t)) for p, t in zip(prefixes, reference.continuations)]))
    passed = agreement >= agreement_min and min(cosines) >= cosine_min and (free_match == 1.0 or not exact_free_run)
    return GenerationParity(
        agreement=agreement,
        cosine_min=float(min(cosines)),
        cosine_median=float(np.median(cosines)),
        free_run_match=free_match,
        free_run_prefix_min=int(min(prefixes)),
        agreement_min=agreement_min,
        threshold=cosine_min,
        exact_free_run=exact_free_run,
        passed=passed,
        prompts=len(reference.prompts),
        steps=len(agree),
    )
