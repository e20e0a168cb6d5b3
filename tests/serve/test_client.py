"""`siliconlab.client` without a server: light to import, clear about bad arguments and unreachable servers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from siliconlab.errors import SiliconlabError
from siliconlab.serve.config import free_port


def test_the_client_imports_without_torch_or_transformers() -> None:
    code = "import sys, siliconlab.client; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_protocol_and_unreachable_server() -> None:
    from siliconlab.client import Client

    with pytest.raises(SiliconlabError, match="protocol must be"):
        Client("127.0.0.1:1", protocol="ftp")
    for protocol in ("http", "grpc"):
        with Client(f"127.0.0.1:{free_port()}", protocol=protocol, timeout_s=2) as client:
            assert client.ready() is False
