"""One converter for every kind: a decoder artifact goes through the same lock, reuse check, integrity check,
remembered parity failures and notices as an encoder's, under its own (generation) parity gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.convert.kinds import EncoderGate, GenerationGate
from siliconlab.convert.pipeline import Converter
from siliconlab.errors import UsageError
from siliconlab.models import resolve
from siliconlab.models.generative import RandomGenerativeSource
from siliconlab.units import registry
from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder

TINY_GPT2 = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 64, "vocab_size": 128}


def _converter(out: Path) -> Converter:
    source = RandomGenerativeSource("gpt2-kinds", "GPT2Config", "1 layer, 32 wide", TINY_GPT2)
    return Converter(source, out, threads=1, gate=GenerationGate(prompts=2, steps=4))


def test_the_kind_chooses_the_gate(tiny_bert: Path, tmp_path: Path):
    assert isinstance(Converter(resolve(str(tiny_bert)), tmp_path, 1).gate, EncoderGate)
    assert isinstance(Converter(resolve("gpt2"), tmp_path, 1).gate, GenerationGate)
    with pytest.raises(UsageError, match="runs decoder models"):
        Converter(resolve(str(tiny_bert)), tmp_path, 1).convert_unit(registry.get("decoder", "torch-cpu-fp32"))


def test_a_decoder_parity_failure_is_remembered_until_forced(tmp_path: Path):
    calls = []

    class Strict(TorchCpuFp32Decoder):
        cosine_min = 1.5  # no logits can pass: the gate must reject it

        def convert(self, model, out_dir):
            calls.append(1)
            return super().convert(model, out_dir)

    converter = _converter(tmp_path)
    first = converter.convert_unit(Strict())
    assert first.status == "failed" and first.error.startswith("generation parity failed")
    again = converter.convert_unit(Strict())
    assert again.status == "failed" and "remembered" in again.error and len(calls) == 1
    assert converter.convert_unit(Strict(), force=True).status == "failed" and len(calls) == 2
    assert not (converter.model_dir / "torch-cpu-fp32").exists()  # a failed gate installs nothing


def test_a_changed_decoder_artifact_is_rebuilt_with_a_notice(tmp_path: Path):
    converter = _converter(tmp_path)
    unit = registry.get("decoder", "torch-cpu-fp32")
    first = converter.convert_unit(unit)
    assert first.status == "converted" and first.manifest["kind"] == "decoder"
    assert first.manifest["task"] == "generation" and first.manifest["parity"]["passed"]
    assert converter.convert_unit(unit).status == "cached"
    (first.artifact_dir / "config.json").write_text("{}")
    rebuilt = converter.convert_unit(unit)
    assert rebuilt.status == "converted" and "changed since conversion" in rebuilt.notice
