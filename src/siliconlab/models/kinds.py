"""The model kind: encoder, decoder (causal LM) or seq2seq (encoder-decoder LM), decided here and nowhere else.

Why one place: the kind picks the units (units/registry.py), the parity gate (convert/kinds.py), the bench
workloads and the best-unit ranking (tasks/best.py); three hand-written checks of "is it generative?" had
begun to disagree (a name list in the CLI, a task check, a config check).
"""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["encoder", "decoder", "seq2seq"]
KINDS: tuple[Kind, ...] = ("encoder", "decoder", "seq2seq")
GENERATIVE_KINDS: tuple[Kind, ...] = ("decoder", "seq2seq")

#: Words in a config's `architectures` entry: a causal LM, an encoder-decoder LM.
CAUSAL_MARKERS = ("ForCausalLM", "LMHeadModel")
SEQ2SEQ_MARKERS = ("ForConditionalGeneration",)


def _field(config: Any, key: str, default: Any = None) -> Any:
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def generation_kind(config: Any) -> Kind:
    """The kind of a generative model's config: seq2seq when it is encoder-decoder (T5), else decoder."""
    encoder_decoder = (
        _field(config, "is_encoder_decoder", False)
        or _field(config, "model_type", "") == "t5"
        or any(marker in a for a in _field(config, "architectures") or [] for marker in SEQ2SEQ_MARKERS)
    )
    return "seq2seq" if encoder_decoder else "decoder"


def config_kind(config: Any) -> Kind:
    """The kind a Hugging Face config (object or plain dict from config.json) describes: generative only when
    its `architectures` name a language-model head (a T5 encoder alone is an encoder)."""
    architectures = _field(config, "architectures") or []
    if not any(marker in a for a in architectures for marker in CAUSAL_MARKERS + SEQ2SEQ_MARKERS):
        return "encoder"
    return generation_kind(config)


def is_generative(source: Any) -> bool:
    """A decoder or seq2seq source, told without reading its config (smollm2-chat's costs a GGUF conversion)."""
    return getattr(source, "task", None) == "generation"


def kind_of(source: Any) -> Kind:
    """The kind of a model source: a generative source is a decoder unless its config is encoder-decoder."""
    return generation_kind(source.config) if is_generative(source) else "encoder"
