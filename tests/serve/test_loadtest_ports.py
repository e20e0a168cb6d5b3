"""`siliconlab loadtest MODEL --http-port/--grpc-port/--metrics-port`: the managed server's ports, checked as
`serve` checks its own, before any server starts or text loads."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from siliconlab.cli import app
from siliconlab.errors import UsageError
from siliconlab.serve.loadtest.target import ManagedServer, free_port, server_ports


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--http-port", "0"], "--http-port must be a port number 1-65535, got 0"),
        (["--grpc-port", "70000"], "--grpc-port must be a port number 1-65535, got 70000"),
        (["--http-port", "18123", "--metrics-port", "18123"], "the ports must differ"),
    ],
)
def test_bad_ports_are_refused_in_one_line(args: list[str], says: str, tmp_path):
    result = CliRunner().invoke(app, ["loadtest", "minilm", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert not (tmp_path / "serve.log").exists(), "refused before any server started"


def test_a_taken_port_is_refused_by_name():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["loadtest", "minilm", "--grpc-port", str(port)])
    assert result.exit_code == 2
    assert f"--grpc-port {port} on 127.0.0.1 is not free" in " ".join(result.output.split())


def test_ports_are_refused_for_a_server_that_is_already_running():
    result = CliRunner().invoke(app, ["loadtest", "http://127.0.0.1:8000", "--http-port", "9000"])
    assert result.exit_code == 2 and "only for a MODEL the load test serves itself" in result.output


def test_given_ports_reach_the_serve_command_and_the_others_are_free_ones(tmp_path):
    http = free_port()
    ports = server_ports(http, None, None)
    assert ports["http"] == http and len(set(ports.values())) == 3
    command = ManagedServer("minilm", [], tmp_path / "log", ports=ports).command()
    assert f"--http-port={http}" in command and f"--grpc-port={ports['grpc']}" in command
    with pytest.raises(UsageError):
        server_ports(None, None, 65536)
