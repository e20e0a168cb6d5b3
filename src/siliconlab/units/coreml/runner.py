"""macOS: run a Core ML package through the Runner interface, padding each request to an enumerated shape.

The package only accepts its enumerated (batch, seq) shapes (see export.py). A request of shape (B, S) is
padded to the smallest enumerated sequence length >= S (token id 0, mask 0) and its rows are sent in
chunks of the largest enumerated batch, each chunk padded to the smallest enumerated batch that holds it.
Padded key positions are masked inside the model and padded rows/positions are sliced off the outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from siliconlab.units.base import CpuRunnerMixin


def _bucket(value: int, choices: list[int]) -> int:
    for choice in choices:
        if choice >= value:
            return choice
    raise ValueError(f"{value} exceeds the largest enumerated size {choices[-1]}")


class CoreMLRunner(CpuRunnerMixin):  # MLModel.predict is synchronous: nothing to synchronize
    tokens_per_call = None  # enumerated shapes, and the Neural Engine was not measured: pipelines batch as before

    def __init__(self, package: Path, compute_unit: str):
        import coremltools as ct

        self.model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, compute_unit))
        spec = self.model.get_spec()
        shapes = [tuple(s.shape) for s in spec.description.input[0].type.multiArrayType.enumeratedShapes.shapes]
        self.batches = sorted({b for b, _ in shapes})
        self.seqs = sorted({s for _, s in shapes})
        self.output_names = tuple(feature.name for feature in spec.description.output)

    def _predict(self, ids: np.ndarray, mask: np.ndarray, seq: int) -> dict[str, np.ndarray]:
        rows = ids.shape[0]
        batch = _bucket(rows, self.batches)
        padded_ids = np.zeros((batch, seq), dtype=np.int32)
        padded_mask = np.zeros((batch, seq), dtype=np.int32)
        padded_ids[:rows, : ids.shape[1]] = ids
        padded_mask[:rows, : ids.shape[1]] = mask
        result = self.model.predict({"input_ids": padded_ids, "attention_mask": padded_mask})
        return {name: np.asarray(result[name], dtype=np.float32)[:rows] for name in self.output_names}

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        length = input_ids.shape[1]
        seq = _bucket(length, self.seqs)
        step = self.batches[-1]
        chunks = [
            self._predict(input_ids[start : start + step], attention_mask[start : start + step], seq)
            for start in range(0, input_ids.shape[0], step)
        ]
        outputs = {name: np.concatenate([c[name] for c in chunks]) for name in self.output_names}
        if "token_states" in outputs:
            outputs["token_states"] = outputs["token_states"][:, :length]
        return outputs
