"""The parity gate: the reference runner passes against itself; a runner computing anything else fails with figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siliconlab.convert import Converter
from siliconlab.convert.parity import check_parity, reference_outputs
from siliconlab.data import parity_texts
from siliconlab.models import resolve
from siliconlab.models.reference import TorchRunner
from siliconlab.models.wrapper import EncoderWithHead


@pytest.fixture(scope="module")
def tiny(tiny_bert: Path):
    model = resolve(str(tiny_bert)).load()
    return model, reference_outputs(model, parity_texts())


class _Scaled:
    """The reference runner with one output channel of every token scaled: a small, real error."""

    def __init__(self, inner: TorchRunner, factor: float):
        self.inner, self.factor, self.output_names = inner, factor, inner.output_names

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        out = self.inner.run(input_ids, attention_mask)
        for value in out.values():
            value[..., 0] *= self.factor
        return out


def test_the_reference_passes_against_itself(tiny):
    model, reference = tiny
    runner = TorchRunner(EncoderWithHead(model.model, model.task), output_names=model.output_names)
    report = check_parity(runner, model, reference, threshold=0.99999)
    assert report.passed and report.cosine_min > 0.999999 and report.max_abs < 1e-4
    assert report.sentences == len(parity_texts()) and report.token_cosine_min > 0.999999


def test_a_wrong_runner_fails_and_says_where(tiny):
    model, reference = tiny
    runner = _Scaled(TorchRunner(EncoderWithHead(model.model, model.task), output_names=model.output_names), 5.0)
    report = check_parity(runner, model, reference, threshold=0.99999)
    assert not report.passed and report.cosine_min < 0.99999 and report.max_abs > 1e-2
    assert 0 <= report.worst_sentence < report.sentences
    assert "needs >= 0.99999" in report.summary()


def test_parity_gate_fails_a_wrong_artifact(tiny_bert: Path, tmp_path: Path):
    """A unit whose artifact computes a different function must fail conversion with its figures."""
    from siliconlab.units.torch.cpu import TorchCpuFp32

    class BrokenTorch(TorchCpuFp32):
        name = "torch-cpu-fp32"

        def convert(self, model, out_dir):
            import torch

            with torch.no_grad():
                model.model.encoder.layer[0].output.dense.weight.mul_(3.0)
            return super().convert(model, out_dir)

    outcome = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(BrokenTorch())
    assert outcome.status == "failed"
    assert "parity failed" in outcome.error and "cosine min" in outcome.error
    assert not (tmp_path / tiny_bert.name / "torch-cpu-fp32").exists()
    again = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(BrokenTorch())
    assert again.status == "failed" and "remembered" in again.error and "cosine min" in again.error
    assert f"`siliconlab convert {tiny_bert.name} --units torch-cpu-fp32 --force` retries" in again.error
    fixed = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(TorchCpuFp32(), force=True)
    assert fixed.status == "converted" and not list((tmp_path / tiny_bert.name).glob(".*parity-failed.json"))
