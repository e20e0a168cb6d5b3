"""BERT-base architecture with seeded random weights: comparable to published BERT-base timings, not for use."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any

from siliconlab.models.base import LoadedModel, ModelSource, count_params, max_length_of
from siliconlab.models.minilm import tokenizer_directory

SEED = 0
#: Bump when the way weights are generated changes, so cached artifacts are rebuilt.
RECIPE = "bert-base-random-v1"


class BertBaseSource(ModelSource):
    name = "bert-base"
    source = "generated: BertConfig() defaults, seeded random weights, MiniLM (bert-base-uncased) vocabulary"
    purpose = "architecture only — for timing (weights are random, outputs are meaningless)"
    architecture_only = True

    @cached_property
    def config(self) -> Any:
        from transformers import BertConfig

        return BertConfig()

    def load(self, attn_implementation: str = "sdpa") -> LoadedModel:
        import torch
        from transformers import AutoTokenizer, BertModel

        config = self.config.__class__(**self.config.to_dict())
        config._attn_implementation = attn_implementation
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(SEED)
        try:
            model = BertModel(config).eval()
        finally:
            torch.random.set_rng_state(generator_state)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_directory(), trust_remote_code=False)
        return LoadedModel(
            name=self.name,
            model=model,
            tokenizer=tokenizer,
            task="embedding",
            max_length=max_length_of(config, tokenizer),
            content_hash=self.content_hash(),
            config=config,
        )

    def content_hash(self) -> str:
        import torch

        vocab = (tokenizer_directory() / "vocab.txt").read_bytes()
        payload = json.dumps(self.config.to_diff_dict(), sort_keys=True) + RECIPE + f"seed={SEED}"
        payload += f"torch={torch.__version__.split('+')[0]}"  # the generator's stream is torch-version bound
        return hashlib.sha256(payload.encode() + vocab).hexdigest()

    def describe(self) -> dict[str, Any]:
        params = count_params(self.config, "embedding")
        return {"params": params, "size_bytes": params * 4, "task": "embedding", "architecture": "BertModel"}
