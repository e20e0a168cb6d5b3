"""The embedding pipeline, shaped like sentence-transformers' `SentenceTransformer` so its users' code runs as is.

`encode` takes SentenceTransformer.encode's arguments with their meanings (batch_size, show_progress_bar,
output_value, convert_to_numpy/tensor, normalize_embeddings, truncate_dim, prompt) and one text gives one 1-D
vector, as there. One difference, on purpose: `normalize_embeddings` defaults to True. all-MiniLM-L6-v2's own
pipeline ends in a Normalize module, so SentenceTransformer gives unit vectors for it either way; our graph
normalises too, and True keeps rows unit-length after `truncate_dim` as well. `similarity` is cosine and
answers a torch tensor, like SentenceTransformer's default `similarity_fn_name = "cosine"`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from siliconlab.errors import UsageError
from siliconlab.tasks.pipeline import Pipeline, as_list, warn_bad_items
from siliconlab.tasks.task import Column, Task

OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")


class EmbeddingPipeline(Pipeline):
    task = "embedding"
    methods = ("encode", "encode_query", "encode_document", "similarity", "similarity_pairwise")
    similarity_fn_name = "cosine"

    def encode(
        self,
        sentences: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
    ) -> Any:
        """Sentence embeddings, one row per text (a 1-D vector for one text); rows of bad items are NaN, with a
        warning naming them. Arguments as SentenceTransformer.encode (module docstring)."""
        _check_options(batch_size, output_value, precision, device, truncate_dim, prompt_name)
        items, single = as_list(sentences)
        if prompt:
            items = [prompt + item if isinstance(item, str) else item for item in items]
        if output_value == "token_embeddings":
            return self._token_embeddings(items, single, batch_size, bool(show_progress_bar), convert_to_tensor)
        result, errors = self.run_texts(items, "sentence_embedding", batch_size, bool(show_progress_bar))
        warn_bad_items(errors)
        if result is None:
            raise UsageError(f"no text could be embedded: {errors[min(errors)]}")
        if truncate_dim is not None:
            result = np.ascontiguousarray(result[:, :truncate_dim])
            if normalize_embeddings:  # unit rows again after truncation, as ST does
                result = result / np.linalg.norm(result, axis=1, keepdims=True)
        # Untruncated rows come unit-length from the graph (models/wrapper.py): dividing again would only move
        # their last bits away from what batch jobs, the server and earlier versions answer.
        return _convert(result, single, convert_to_numpy, convert_to_tensor)

    def encode_query(self, sentences: Any, **options: Any) -> Any:
        """As encode: our models carry no query/document prompts, so all three give the same vectors (as ST's do
        for a model without prompts)."""
        return self.encode(sentences, **options)

    def encode_document(self, sentences: Any, **options: Any) -> Any:
        return self.encode(sentences, **options)

    def _token_embeddings(self, items: list[Any], single: bool, batch_size: int, progress: bool, tensor: bool) -> Any:
        """Per text, the last layer's states of its valid tokens ([tokens, hidden]), as ST's token_embeddings."""
        if "token_states" not in self.loaded.runner.output_names:
            raise UsageError(f"unit {self.unit} of '{self.model}' does not output token states")
        rows, errors = self.run_tokens(items, batch_size, progress)
        warn_bad_items(errors)
        if not rows:
            raise UsageError(f"no text could be embedded: {errors[min(errors)]}")
        width = next(iter(rows.values())).shape[-1]
        answers = [rows.get(i, np.full((0, width), np.nan, dtype=np.float32)) for i in range(len(items))]
        if tensor:
            import torch

            tensors = [torch.from_numpy(a) for a in answers]
            return tensors[0] if single else tensors
        return answers[0] if single else answers

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Cosine similarity of every row of `embeddings1` with every row of `embeddings2`: a [n, m] torch tensor."""
        a, b = _as_matrix(embeddings1), _as_matrix(embeddings2)
        return _unit_rows(a) @ _unit_rows(b).T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Cosine similarity of row i with row i: a [n] torch tensor."""
        a, b = _as_matrix(embeddings1), _as_matrix(embeddings2)
        if a.shape != b.shape:
            raise UsageError(f"similarity_pairwise needs two equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
        return (_unit_rows(a) * _unit_rows(b)).sum(dim=1)

    def get_sentence_embedding_dimension(self) -> int:
        """The width of a sentence embedding (384 for MiniLM), measured once on a probe text."""
        if getattr(self, "_dimension", None) is None:
            result, _ = self.run_texts(["width probe"], "sentence_embedding")
            assert result is not None  # one text, and it was not refused
            self._dimension = int(result.shape[1])
        return self._dimension

    get_embedding_dimension = get_sentence_embedding_dimension

    @property
    def max_seq_length(self) -> int:
        """Tokens a text is cut to (longer texts are truncated, with a warning)."""
        return self.loaded.max_length


def _check_options(
    batch_size: int, output_value: str | None, precision: str, device: str | None, truncate: int | None, prompt: Any
) -> None:
    """The ST arguments we cannot honour are one-line errors, never silently ignored."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    if output_value not in OUTPUT_VALUES:
        raise UsageError(f"output_value must be one of {', '.join(OUTPUT_VALUES)}, got {output_value!r}")
    if precision != "float32":
        raise UsageError(f"precision {precision!r} is not supported: embeddings are float32 (quantize them yourself)")
    if device is not None and str(device) != "cpu":
        raise UsageError(f"device={device!r}: choose the compute unit with siliconlab.load(name, unit=...) instead")
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 1):
        raise UsageError(f"truncate_dim must be a positive integer, got {truncate!r}")
    if prompt is not None:
        raise UsageError(f"prompt_name={prompt!r}: this model has no named prompts (pass prompt='...' instead)")


def _convert(result: np.ndarray, single: bool, to_numpy: bool, to_tensor: bool) -> Any:
    """ST's output forms: a numpy array (default), one torch tensor, or (neither) a list of 1-D tensors."""
    if to_tensor or not to_numpy:
        import torch

        tensor = torch.from_numpy(result)
        if not to_tensor:
            return tensor[0] if single else list(tensor)
        return tensor[0] if single else tensor
    return result[0] if single else result


def _as_matrix(embeddings: Any) -> Any:
    """A float32 2-D torch tensor from an array, a tensor, or a list of vectors (a 1-D input is one row)."""
    import torch

    if isinstance(embeddings, (list, tuple)):
        if not embeddings:
            raise UsageError("no embeddings given")
        embeddings = torch.stack([torch.as_tensor(np.asarray(e) if not torch.is_tensor(e) else e) for e in embeddings])
    tensor = torch.as_tensor(embeddings).to(torch.float32)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2:
        raise UsageError(f"embeddings must be vectors or a matrix of them, got shape {tuple(tensor.shape)}")
    return tensor


def _unit_rows(tensor: Any) -> Any:
    import torch

    return torch.nn.functional.normalize(tensor, p=2.0, dim=1)


class EmbeddingTask(Task):
    """Sentence embeddings: one unit-length float32 vector per text (the `sentence_embedding` output)."""

    name = "embedding"
    pipeline_class = EmbeddingPipeline
    models = ("minilm",)
    head = "embedding"
    output = "sentence_embedding"
    token_ids_model = True
    openai_embeddings = True

    def columns(self, labels: list[str], width: int) -> list[Column]:
        return [Column("embedding", "vector", width)]

    def answer(self, values: np.ndarray, labels: list[str]) -> dict[str, list[Any]]:
        return {"embedding": list(values)}
