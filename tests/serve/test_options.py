"""`siliconlab serve`'s options are refused in one line before any model loads."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from siliconlab.errors import UsageError
from siliconlab.serve.config import ServeOptions, free_port, served_name


def _options(**changes: object) -> ServeOptions:
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    return ServeOptions(**{**ports, **changes})


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"models": ("bert-huge",)}, "unknown model 'bert-huge'"),
        ({"models": ("minilm", "minilm")}, "named twice"),
        ({"models": ()}, "no model given"),
        ({"max_batch": 0}, "--max-batch must be >= 1"),
        ({"max_queue": 0}, "--max-queue must be >= 1"),
        ({"max_queue_delay_us": -1}, "--max-queue-delay-us must be >= 0"),
        ({"http_port": 70000}, "--http-port must be a port number"),
        ({"http_port": 9000, "grpc_port": 9000}, "the ports must differ"),
        ({"host": "no-such-host.invalid"}, "is not an address of this machine"),
    ],
)
def test_bad_options(changes: dict, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        _options(**changes).check()


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"--grpc-port {port} on 127.0.0.1 is not free"):
            _options(grpc_port=port).check()


def test_served_names() -> None:
    assert [served_name(m) for m in ("minilm", "sentiment", "spam", "chat", "chat-retrieval")] == [
        "minilm", "sentiment", "spam", "chat", "chat"]  # fmt: skip


def test_the_cli_refuses_in_one_line_without_loading_anything() -> None:
    command = [sys.executable, "-m", "siliconlab", "serve", "nope", "--http-port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown model 'nope'" in done.stderr and "Traceback" not in done.stderr
