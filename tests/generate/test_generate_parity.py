"""Teacher-forced generation parity: fp32 passes exactly; a runner that computes something else fails."""

from __future__ import annotations

import numpy as np
import pytest

from siliconlab.convert.parity_generate import check_generation_parity, reference_generation
from siliconlab.models import resolve


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    model = resolve(str(tiny_llama)).load()
    return model, reference_generation(model, steps=8, count=2)


def test_the_fp32_model_agrees_with_itself_through_the_cache(tiny) -> None:
    from siliconlab.units.torch.cpu_generate import TorchDecoderRunner

    model, reference = tiny
    parity = check_generation_parity(TorchDecoderRunner(model.model, 128), reference, 1.0, 0.99999, True)
    assert parity.passed, parity.summary()
    assert parity.agreement == 1.0 and parity.free_run_match == 1.0
    assert parity.steps == 16


def test_a_runner_with_noisy_logits_fails_the_gate(tiny) -> None:
    from siliconlab.units.torch.cpu_generate import TorchDecoderRunner

    model, reference = tiny

    class Noisy(TorchDecoderRunner):
        rng = np.random.default_rng(0)

        def _forward(self, ids, cache):  # noqa: ANN001, ANN202
            logits, cache = super()._forward(ids, cache)
            return logits + self.rng.normal(0, logits.std() * 3, logits.shape).astype(np.float32), cache

    parity = check_generation_parity(Noisy(model.model, 128), reference, 0.95, 0.99, False)
    assert not parity.passed
    assert parity.agreement < 0.95 and parity.cosine_min < 0.99


def test_prompts_are_real_chat_questions_in_the_template(tiny) -> None:
    model, reference = tiny
    text = model.tokenizer.decode(reference.prompts[0][0])
    assert "assistant" in text and "?" in text
