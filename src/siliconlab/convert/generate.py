"""The decoder names of the one converter (convert/pipeline.py), kept for callers that still import them.

`Converter` chooses the generation gate itself from the model's kind; `GenerativeConverter` only lets a caller
size that gate's reference (tests pass fewer prompts and steps).
"""

from __future__ import annotations

from pathlib import Path

from siliconlab.convert.kinds import GenerationGate
from siliconlab.convert.pipeline import Converter, load_artifact
from siliconlab.models.base import ModelSource
from siliconlab.units.base import DecoderRunner, GenerativeUnit


class GenerativeConverter(Converter):
    def __init__(self, source: ModelSource, out: Path, threads: int, prompts: int | None = None,
                 steps: int | None = None, verify: bool = False):  # fmt: skip
        super().__init__(source, out, threads, verify=verify, gate=GenerationGate(prompts, steps))


def load_decoder(artifact_dir: Path, unit: GenerativeUnit, threads: int) -> DecoderRunner:
    """load_artifact's runner: a decoder artifact loads like any other (manifest, remote code refused, one line)."""
    runner, _ = load_artifact(artifact_dir, unit, threads)
    return runner
