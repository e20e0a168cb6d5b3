"""A frozen sentence encoder with a linear head on its mean-pooled, L2-normalised embedding.

This is how the task models (`sentiment`, `spam`) classify: the head is trained on the embedding the encoder
was trained to produce (sentence-transformers' mean pooling), not on BERT's [CLS] pooler, which MiniLM never
tuned. The head is part of the module, so every unit exports, converts and runs the whole task: token ids
in, logits out. On disk it is a normal Hugging Face encoder folder plus `head.safetensors`; `config.json`
carries `siliconlab_head` (labels, pooling) so a folder says by itself that it is a classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from siliconlab.models.base import HEAD_FILE, HEAD_KEY, HfModule, head_spec  # noqa: F401 - re-exported
from siliconlab.models.wrapper import mean_pool_normalize


class HeadOutput:
    """Mimics Hugging Face's SequenceClassifierOutput where callers read `.logits`."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits


class MeanPoolClassifier(nn.Module):
    """encoder -> mean pool over valid tokens -> L2 normalise -> Linear -> logits.

    `bert` and `classifier` are named like Hugging Face's *ForSequenceClassification so code that rebuilds
    the encoder (CoreML's ANE rewrite, the CUDA fastbert, MLX) finds them; `pooling = "mean"` tells it that
    the head reads the normalised mean, not the [CLS] pooler.
    """

    pooling = "mean"

    def __init__(
        self, bert: HfModule, labels: list[str], weight: torch.Tensor | None = None, bias=None, truncation="head"
    ):
        super().__init__()
        self.bert = bert
        self.labels = list(labels)
        self.classifier = nn.Linear(int(bert.config.hidden_size), len(self.labels))
        if weight is not None:
            with torch.no_grad():
                self.classifier.weight.copy_(weight)
                self.classifier.bias.copy_(bias if bias is not None else torch.zeros(len(self.labels)))
        self.config = bert.config
        self.config.architectures = [type(bert).__name__]
        setattr(self.config, HEAD_KEY, {"labels": self.labels, "pooling": self.pooling, "truncation": truncation})
        self.config.id2label = dict(enumerate(self.labels))
        self.config.label2id = {label: i for i, label in enumerate(self.labels)}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None, **kwargs: Any):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
        pooled = mean_pool_normalize(out.last_hidden_state, attention_mask)
        return HeadOutput(self.classifier(pooled))

    def save_pretrained(self, out_dir: Path, safe_serialization: bool = True) -> None:
        from safetensors.torch import save_file

        self.bert.save_pretrained(out_dir, safe_serialization=True)
        tensors = {"weight": self.classifier.weight.detach().contiguous(), "bias": self.classifier.bias.detach()}
        save_file(tensors, str(Path(out_dir) / HEAD_FILE))

    @classmethod
    def from_pretrained(cls, path: Path, **kwargs: Any) -> MeanPoolClassifier:
        from safetensors.torch import load_file
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(path, **kwargs)
        spec = head_spec(bert.config)
        if spec is None:
            raise ValueError(f"{path}: config.json has no {HEAD_KEY} entry")
        head_path = Path(path) / HEAD_FILE
        if not head_path.is_file():
            raise FileNotFoundError(f"{path}: the classifier head {HEAD_FILE} is missing")
        tensors = load_file(str(head_path))
        truncation = spec.get("truncation", "head")
        return cls(bert, spec["labels"], tensors["weight"], tensors["bias"], truncation=truncation).eval()


def head_logits(classifier: nn.Module, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The head on encoder states, for rewrites that compute the states their own way."""
    return classifier(mean_pool_normalize(states, attention_mask))
