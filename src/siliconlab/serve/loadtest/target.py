"""What the load test aims at: a URL (loopback unless allowed otherwise) or a model it serves itself."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from siliconlab.errors import SiliconlabError, UsageError


def looks_like_url(target: str) -> bool:
    """`http://h:p`, `grpc://h:p` or a bare `host:port`; anything else is a model name or folder."""
    if "://" in target:
        return True
    host, sep, port = target.rpartition(":")
    return bool(sep and host and port.isdigit())


def normalise_url(target: str, protocol: str) -> str:
    """scheme://host:port with the scheme the protocol speaks (grpc:// is informational: tritonclient wants
    host:port), refusing paths and unknown schemes in one line."""
    parts = urlsplit(target if "://" in target else f"{protocol}://{target}")
    if parts.scheme not in ("http", "grpc"):
        raise UsageError(f"unsupported URL scheme '{parts.scheme}' in {target}: use http:// or grpc:// (or host:port)")
    if parts.path not in ("", "/") or not parts.hostname or parts.port is None:
        raise UsageError(f"give the server as host:port or http://host:port, not {target}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 keeps its brackets
    return f"{parts.scheme}://{host}:{parts.port}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(url: str, allow_remote: bool) -> None:
    """Loading someone's server is an attack unless they asked for it: loopback only by default."""
    if not allow_remote and not is_loopback(url):
        raise UsageError(f"{url} is not a loopback address: pass --allow-remote to load a server on another host")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_ports(http: int | None, grpc: int | None, metrics: int | None) -> dict[str, int]:
    """The managed server's ports: the ones asked for, checked as `serve` checks its own (1-65535, all different,
    free on loopback now), and a free loopback port for each one not asked for."""
    from siliconlab.serve.config import probe_port

    asked = {"http": http, "grpc": grpc, "metrics": metrics}
    for name, port in asked.items():
        if port is not None and not 1 <= port <= 65535:
            raise UsageError(f"--{name}-port must be a port number 1-65535, got {port}")
    given = [port for port in asked.values() if port is not None]
    if len(set(given)) != len(given):
        raise UsageError(f"the ports must differ: {', '.join(f'--{k}-port {v}' for k, v in asked.items() if v)}")
    for name, port in asked.items():
        if port is not None:
            probe_port("127.0.0.1", port, f"--{name}-port")
    ports = {name: port for name, port in asked.items() if port is not None}
    for name in asked:
        while name not in ports:
            candidate = free_port()
            if candidate not in ports.values():
                ports[name] = candidate
    return {name: ports[name] for name in asked}


class ManagedServer:
    """`siliconlab serve MODEL` as a child process on loopback ports (free ones unless given); stopped with
    SIGTERM (its drain)."""

    def __init__(self, model: str, serve_args: list[str], log_path: Path, start_timeout: float = 900.0,
                 ports: dict[str, int] | None = None):  # fmt: skip
        self.model = model
        self.serve_args = serve_args
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.ports = ports or server_ports(None, None, None)
        self.process: subprocess.Popen | None = None

    def url(self, protocol: str) -> str:
        return f"{protocol}://127.0.0.1:{self.ports[protocol]}"

    def command(self) -> list[str]:
        ports = [f"--{name}-port={port}" for name, port in self.ports.items()]
        return [
            sys.executable,
            "-m",
            "siliconlab",
            "serve",
            self.model,
            "--host",
            "127.0.0.1",
            *ports,
            *self.serve_args,
        ]

    def __enter__(self) -> ManagedServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        """Ready means Triton's /v2/health/ready says 200; the first start may convert the model (minutes)."""
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        ready = f"{self.url('http')}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise SiliconlabError(f"`siliconlab serve {self.model}` exited ({self.process.returncode}): {tail[0]}")
            try:
                with urllib.request.urlopen(ready, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise SiliconlabError(
            f"`siliconlab serve {self.model}` not ready after {self.start_timeout:.0f} s ({self.log_path})"
        )

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
