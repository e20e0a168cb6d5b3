"""Text input checks every entry point shares: invalid UTF-8, non-strings, and how a single text is named."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from siliconlab.errors import UsageError
from siliconlab.text import check_text


@pytest.mark.parametrize(
    "text,message",
    [
        ("caf\udce9 au lait", "not valid UTF-8 (byte 0xe9 at offset 3)"),
        (b"caf\xe9 au lait", "not valid UTF-8 (byte 0xe9 at offset 3)"),
        ("caf\ud800 au lait", "not valid UTF-8 (lone surrogate U+D800 at offset 3)"),
        (42, "must be a string"),
        ("  \n", "is empty"),
    ],
    ids=["surrogate-escaped-argv", "raw-bytes", "lone-surrogate", "not-a-string", "blank"],
)
def test_bad_text_is_a_usage_error_that_names_it(text: object, message: str):
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        check_text(text)
    assert str(caught.value).startswith("the text ")


def test_good_text_passes_unchanged_including_emoji_and_mixed_scripts():
    for text in ("café au lait", "great movie 🎬👍", "東京 and Zürich", b"caf\xc3\xa9".decode()):
        assert check_text(text) == text
    assert check_text(b"caf\xc3\xa9") == "café"


def test_cli_with_invalid_utf8_argument_prints_one_line_and_exits_2():
    """The bytes reach Python as a lone surrogate; the user must see one line, never a traceback."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "siliconlab",
            "bench",
            "--quick",
            "--units",
            "torch-cpu-fp32",
            "--text",
            b"caf\xe9 au lait",
        ],
        capture_output=True,
        env=env,
        timeout=300,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr
    assert "not valid UTF-8" in stderr and "Traceback" not in stderr
