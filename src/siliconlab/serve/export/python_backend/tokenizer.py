"""Triton Python-backend model: text (BYTES) -> input_ids, attention_mask (INT64), for the ONNX step.

Copied into an exported repository as `<model>-tokenizer/1/model.py`, next to `tokenizer/tokenizer.json`. It
needs only numpy and the `tokenizers` package (the Rust tokenizer behind Hugging Face's fast tokenizers), so a
stock Triton container needs one `pip install tokenizers`. Each request is padded to the next length bucket
(config parameter `length_buckets`), because Triton's dynamic batcher only joins requests of the same shape:
buckets let requests of similar length share a batch; the attention mask keeps the padding out of the answer.
A bad text (empty, not UTF-8) fails its own request with a clear message; the others are answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

try:  # present inside Triton's Python backend only
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - imported outside Triton (docs, linters)
    pb_utils = None


def bucket_length(longest: int, buckets: list[int]) -> int:
    """The smallest bucket that holds `longest` tokens (the largest bucket is the model's maximum); with no
    buckets, the request's own longest text (exact answers for int8 graphs, less batching)."""
    return next((b for b in buckets if b >= longest), buckets[-1]) if buckets else longest


def decode_text(raw: Any) -> str:
    """One BYTES element -> a non-empty str, or ValueError saying what is wrong with it."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"text is not valid UTF-8 (byte {exc.start})") from None
    text = str(raw)
    if not text.strip():
        raise ValueError("empty text: send at least one non-blank character")
    return text


class TritonPythonModel:
    """Tokenize every text of a request, pad the request to a length bucket."""

    def initialize(self, args: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.max_length = int(params["max_length"])
        self.pad_id = int(params["pad_id"])
        listed = [b for b in params.get("length_buckets", "").split(",") if b.strip()]
        self.buckets = sorted({min(int(b), self.max_length) for b in listed})
        folder = Path(args["model_repository"]) / args["model_version"] / "tokenizer"
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        width = bucket_length(max(len(e.ids) for e in encodings), self.buckets)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return ids, mask

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            raw = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
            try:
                texts = [decode_text(item) for item in raw]
            except ValueError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            ids, mask = self.tokenize(texts)
            tensors = [pb_utils.Tensor("input_ids", ids), pb_utils.Tensor("attention_mask", mask)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
