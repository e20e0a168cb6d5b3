"""Generative (decoder) model sources: causal LMs from a folder, and architecture-only GPT-2 / T5 for timing.

A generative source loads as a `LoadedModel` with task "generation": the fp32 `*ForCausalLM` (or
`*ForConditionalGeneration` for T5) in eval mode, its tokenizer (None for architecture-only models, which
take random token ids) and its context length. Encoder sources are untouched (models/hf_directory.py).
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from siliconlab.errors import UsageError
from siliconlab.models.base import LoadedModel, ModelSource, hash_files
from siliconlab.models.kinds import config_kind, generation_kind, kind_of

SEED = 0
_HASHED_SUFFIXES = {".safetensors", ".json", ".txt", ".model", ".jinja"}


def is_generative_config(config: Any) -> bool:
    """A config (object or dict) whose architecture is a causal or encoder-decoder LM (models/kinds.py)."""
    return config_kind(config) != "encoder"


def context_length(config: Any) -> int:
    """Tokens the model attends over: max_position_embeddings / n_positions (T5 has relative positions: 512)."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 512


def _quiet_from_pretrained(factory: Any, path: Path, **kwargs: Any) -> Any:
    import torch

    return factory.from_pretrained(
        path, dtype=torch.float32, use_safetensors=True, trust_remote_code=False, **kwargs
    ).eval()


class CausalDirectorySource(ModelSource):
    """A local Hugging Face causal-LM folder (GPT-2, Llama family...): safetensors weights and its tokenizer."""

    task = "generation"

    def __init__(self, path: Path, name: str | None = None, source: str | None = None, purpose: str = ""):
        from siliconlab.models.hf_directory import TOKENIZER_FILES
        from siliconlab.models.remote_code import refuse_remote_code

        self.path = Path(path)
        self.name = name or self.path.resolve().name  # `model/..` is the folder's parent
        self.source = source or f"local directory {self.path}"
        self.purpose = purpose or "your own causal language model"
        if not any(self.path.glob("*.safetensors")):
            raise UsageError(f"'{self.path}' has no safetensors weights; siliconlab loads safetensors only")
        refuse_remote_code(self.path)
        if not is_generative_config(self.config):
            raise UsageError(f"'{self.path}' is not a causal language model (config architectures)")
        if not any((self.path / name).is_file() for name in TOKENIZER_FILES):
            raise UsageError(f"'{self.path}' has no tokenizer files: save the model's tokenizer into it")

    @cached_property
    def config(self) -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.path, trust_remote_code=False)

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = _quiet_from_pretrained(AutoModelForCausalLM, self.path, attn_implementation=attn_implementation)
        tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=False)
        return LoadedModel(self.name, model, tokenizer, "generation", context_length(model.config),  # type: ignore[arg-type]
                           self.content_hash(), config=model.config)  # fmt: skip

    @cached_property
    def _hash(self) -> str:
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES]
        return hash_files(files, self.path)

    def content_hash(self) -> str:
        return self._hash

    def describe(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.path.glob("*.safetensors"))
        return {"params": count_generative_params(self.config), "size_bytes": size, "task": "generation",
                "architecture": (self.config.architectures or [self.config.model_type])[0]}  # fmt: skip


def count_generative_params(config: Any) -> int:
    """Parameters from the config alone (meta device), tied embeddings counted once."""
    import torch

    factory = _factory(config)
    with torch.device("meta"):
        model = factory.from_config(config)
    return sum(p.numel() for p in model.parameters())


def _factory(config: Any) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if generation_kind(config) == "seq2seq" else AutoModelForCausalLM


class RandomGenerativeSource(ModelSource):
    """A published architecture from its config with seeded random weights: for timing only, no tokenizer."""

    architecture_only = True
    task = "generation"

    def __init__(self, name: str, config_factory: str, description: str, overrides: dict[str, Any] | None = None):
        self.name = name
        self.config_factory = config_factory
        self.overrides = dict(overrides or {})  # smaller shapes for tests; the built-ins use the defaults
        self.source = f"generated: {config_factory}() defaults ({description}), seeded random weights"
        self.purpose = "architecture only — for timing (random weights and token ids, no readable text)"

    @cached_property
    def config(self) -> Any:
        import transformers

        config = getattr(transformers, self.config_factory)(**self.overrides)
        config.architectures = ["T5ForConditionalGeneration" if config.model_type == "t5" else "GPT2LMHeadModel"]
        return config

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        import torch

        config = self.config.__class__(**self.config.to_dict())
        config._attn_implementation = attn_implementation
        state = torch.random.get_rng_state()
        torch.manual_seed(SEED)
        try:
            model = _factory(config).from_config(config).eval()
        finally:
            torch.random.set_rng_state(state)
        return LoadedModel(self.name, model, None, "generation", context_length(config),  # type: ignore[arg-type]
                           self.content_hash(), config=config)  # fmt: skip

    def content_hash(self) -> str:
        import torch

        payload = json.dumps(self.config.to_diff_dict(), sort_keys=True) + f"seed={SEED}"
        payload += f"torch={torch.__version__.split('+')[0]}"  # the generator's stream is torch-version bound
        return hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        params = count_generative_params(self.config)
        return {"params": params, "size_bytes": params * 4, "task": "generation",
                "architecture": self.config.architectures[0]}  # fmt: skip


def gpt2_source() -> RandomGenerativeSource:
    return RandomGenerativeSource("gpt2", "GPT2Config", "GPT-2 small: 12 layers, 768 wide, 1024 positions")


def t5_small_source() -> RandomGenerativeSource:
    return RandomGenerativeSource("t5-small", "T5Config", "T5-small: 6+6 layers, 512 wide")


def chat_prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """A user message as the model's chat template lays it out (with the assistant's turn opened), or the plain
    text for a model without a template."""
    if getattr(tokenizer, "chat_template", None):
        laid_out = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(laid_out, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text)["input_ids"])


def require_causal(source: Any) -> None:
    """Chat runs causal LMs; T5 generates on its own units (`convert` / `bench`), but chat has no T5 template."""
    if kind_of(source) == "seq2seq":
        raise UsageError(
            f"'{source.name}' is an encoder-decoder model: chat runs causal LMs; convert or bench it instead "
            "(docs/generate.md)"
        )
