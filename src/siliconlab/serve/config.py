"""Server options: what `siliconlab serve` parsed, checked once before anything loads."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from siliconlab.errors import UsageError

#: The built-in names `serve` answers under and what `siliconlab.load` calls them.
SERVED = {
    "minilm": "minilm",
    "sentiment": "sentiment",
    "spam": "spam",
    "chat": "chat-retrieval",
    "smollm2-chat": "smollm2-chat",
}

#: Dynamic batching defaults (docs/serving.md, "Dynamic batching"): a batch of up to 32 texts amortises the
#: per-call overhead of the CPU units and only fills when requests are waiting; a 0.5 ms queue delay lets
#: requests that arrive together meet in one batch while adding at most 0.5 ms to a lone request. When the model
#: is busy, batches form from the queue whatever the delay.
MAX_BATCH = 32
MAX_QUEUE_DELAY_US = 500
#: `--max-queue` has no default bound. Triton 2.51 bounds a queue only through a queue policy, and any queue
#: policy turns off its batcher's payload prefetching; on that path the batcher waits for a free model instance
#: on a condition variable whose wake-up can be lost, and a lost one costs its full 500 ms default wait
#: (core/src/dynamic_batch_scheduler.cc, WaitForPayloadSlotAvailable). Measured here: with a bound, one request
#: in ~20 at concurrency 1 waited 0.51-0.55 s in the queue; without one, none did (docs/serving.md).
#: Seconds Triton waits for in-flight requests on SIGTERM/Ctrl-C before it exits anyway.
DRAIN_TIMEOUT_S = 10
#: Per-request limits of the OpenAI front (docs/serving.md, "Limits"): the body, texts per embeddings call (OpenAI's
#: own limit), tokens per call (a token-id row counts its ids, a text the tokens the model read of it; 2,048 texts
#: of 512 tokens fit), and messages per chat request. A request beyond is refused (413 / 400) before more work.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_TEXTS = 2048
MAX_REQUEST_TOKENS = 2048 * 512
MAX_CHAT_MESSAGES = 512

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ServeOptions:
    """Everything the server needs besides the models themselves."""

    models: tuple[str, ...] = ("minilm",)
    unit: str = "best"
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = MAX_BATCH
    max_queue_delay_us: int = MAX_QUEUE_DELAY_US
    max_queue: int | None = None
    openai_port: int | None = None
    drain_timeout_s: int = DRAIN_TIMEOUT_S
    threads: int | None = None
    cache: Path | None = None
    log_verbose: int = 0
    #: API keys (serve/auth.py); never printed, so kept out of the repr
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    insecure_no_auth: bool = False
    #: Triton behind the gateway (serve/gateway.py) even without keys: the exact drain, at ~1.5-5 ms per request.
    #: `siliconlab serve` turns it on unless --no-gateway; the library default keeps Triton on its own ports.
    gateway: bool = False
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_texts: int = MAX_TEXTS
    max_request_tokens: int = MAX_REQUEST_TOKENS
    max_chat_messages: int = MAX_CHAT_MESSAGES

    def ports(self) -> dict[str, int]:
        named = {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}
        if self.openai_port is not None:
            named["--openai-port"] = self.openai_port
        return named

    def check(self) -> ServeOptions:
        """Refuse bad options in one line before any model loads (ports are probed, not assumed free)."""
        if not self.models:
            raise UsageError("no model given: serve one or more of " + ", ".join(SERVED))
        for name in self.models:
            served_name(name)
        if len(set(map(served_name, self.models))) != len(self.models):
            raise UsageError(f"a model is named twice: {' '.join(self.models)}")
        bounds = {
            "--max-batch": self.max_batch,
            "--max-queue": 1 if self.max_queue is None else self.max_queue,
            "--max-request-bytes": self.max_request_bytes,
            "--max-texts": self.max_texts,
            "--max-request-tokens": self.max_request_tokens,
            "--max-chat-messages": self.max_chat_messages,
        }
        for option, value in bounds.items():
            if value < 1:
                raise UsageError(f"{option} must be >= 1, got {value}")
        if self.max_queue_delay_us < 0:
            raise UsageError(f"--max-queue-delay-us must be >= 0, got {self.max_queue_delay_us}")
        if self.drain_timeout_s < 1:
            raise UsageError(f"--drain-timeout must be >= 1 second, got {self.drain_timeout_s}")
        ports = self.ports()
        for option, port in ports.items():
            if not 1 <= port <= 65535:
                raise UsageError(f"{option} must be a port number 1-65535, got {port}")
        if len(set(ports.values())) != len(ports):
            raise UsageError(f"the ports must differ: {', '.join(f'{k} {v}' for k, v in ports.items())}")
        for option, port in ports.items():
            probe_port(self.host, port, option)
        from siliconlab.serve.auth import check_exposure

        check_exposure(self.host, self.api_keys, self.insecure_no_auth)
        return self


def served_name(model: str) -> str:
    """The name a model answers under: a built-in name, or a local model folder's name."""
    if model in SERVED or model == "chat-retrieval":
        return "chat" if model == "chat-retrieval" else model
    path = Path(model)
    if path.is_dir():
        if not _NAME.match(path.name):
            raise UsageError(f"model folder '{path.name}' cannot be a model name (letters, digits, . _ - only)")
        return path.name
    raise UsageError(f"unknown model '{model}': serve {', '.join(SERVED)} or a local model folder")


def probe_port(host: str, port: int, option: str) -> None:
    """Fail fast with the port's name when it is taken (Triton would fail later, less clearly)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror:
        raise UsageError(f"--host {host} is not an address of this machine") from None
    except OSError as exc:
        raise UsageError(f"{option} {port} on {host} is not free ({exc.strerror or exc})") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for tests and load tests that start their own server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
