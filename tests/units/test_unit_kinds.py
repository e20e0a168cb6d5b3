"""The model-kind axis: one registry keyed by (kind, name), and the one place a model's kind is decided."""

from __future__ import annotations

import pytest

from siliconlab.errors import UsageError
from siliconlab.models import KINDS, kind_of, resolve
from siliconlab.models.generative import RandomGenerativeSource
from siliconlab.models.kinds import config_kind
from siliconlab.units import registry


def test_every_unit_is_registered_under_its_own_kind():
    for (kind, name), unit in registry.REGISTRY.items():
        assert unit.kind == kind and unit.name == name
    for kind in KINDS:
        assert registry.BASELINE in registry.names(kind)  # one baseline name for every kind
        assert set(registry.default_order(kind)) <= set(registry.names(kind))


def test_one_name_may_mean_a_unit_of_each_kind():
    units = [registry.get(kind, "onnxruntime-cpu-fp32") for kind in KINDS]
    assert [u.kind for u in units] == list(KINDS)
    assert len({type(u) for u in units}) == 3 and {u.engine for u in units} == {"onnxruntime"}


def test_an_unknown_name_lists_the_units_of_the_kind():
    with pytest.raises(UsageError, match="unknown unit 'nope'.*torch-cpu-fp32"):
        registry.get("encoder", "nope")
    with pytest.raises(UsageError, match="cannot run an encoder-decoder model: choose from torch-cpu-fp32"):
        registry.get("seq2seq", "openvino-cpu-fp32")
    with pytest.raises(UsageError, match="no unit given"):
        registry.select("decoder", " , ")


def test_select_all_gives_only_units_that_run_here():
    for kind in KINDS:
        assert all(unit.availability().ok for unit in registry.select(kind, "all"))
        assert registry.select(kind, "torch-cpu-fp32,torch-cpu-fp32")[0].kind == kind  # once, of that kind


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}, "decoder"),
        ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}, "decoder"),
        ({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"}, "seq2seq"),
        ({"architectures": ["T5EncoderModel"], "model_type": "t5", "is_encoder_decoder": True}, "encoder"),
        ({"architectures": ["BertModel"], "model_type": "bert"}, "encoder"),
        ({"model_type": "llama"}, "encoder"),  # no language-model head named: not loaded as a generator
    ],
)
def test_a_config_says_its_kind(config: dict, kind: str):
    assert config_kind(config) == kind


def test_a_source_says_its_kind():
    assert kind_of(resolve("minilm")) == "encoder"
    assert kind_of(resolve("gpt2")) == "decoder"
    assert kind_of(resolve("t5-small")) == "seq2seq"
    tiny_t5 = RandomGenerativeSource("t5-tiny", "T5Config", "tiny", {"num_layers": 1, "d_model": 16})
    assert kind_of(tiny_t5) == "seq2seq"
