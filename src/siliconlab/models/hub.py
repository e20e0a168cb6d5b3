"""A Hugging Face hub id, fetched with plain from_pretrained where the network allows it."""

from __future__ import annotations

from pathlib import Path

from siliconlab.errors import SiliconlabError
from siliconlab.models.hf_directory import HFDirectorySource


def hub_source(model_id: str) -> HFDirectorySource:
    """Download (or find in the local HF cache) a snapshot, then treat it as a local directory."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
    except Exception as exc:  # network, auth, unknown id: all the same to the user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SiliconlabError(f"could not fetch '{model_id}' from the Hugging Face hub: {first_line}") from exc
    return HFDirectorySource(Path(path), name=model_id.replace("/", "--"), source=f"Hugging Face hub {model_id}")
