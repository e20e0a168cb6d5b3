"""API keys for `siliconlab serve`: where they come from, how a request proves it holds one, who may go without.

A key never comes from a command-line value: every local user reads every process's command line in
/proc/<pid>/cmdline. It comes from the environment (`SILICONLAB_API_KEY`, one key) or a file (`--api-key-file`,
one key per line) that only its owner may read. Requests send `Authorization: Bearer <key>` (HTTP header or gRPC
metadata); the comparison is constant-time (`hmac.compare_digest`) against every key, so timing tells nothing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import stat
from pathlib import Path

from siliconlab.errors import UsageError

ENV_KEY = "SILICONLAB_API_KEY"
ENV_KEY_FILE = "SILICONLAB_API_KEY_FILE"
#: A key shorter than this is guessable over the network in reasonable time.
MIN_KEY_LENGTH = 16
#: Routes that answer without a key: liveness and readiness (load balancers and orchestrators poll them).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
OPEN_GRPC = frozenset({"/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady"})


def read_key_file(path: Path) -> tuple[str, ...]:
    """The keys of a file, one per line (blank lines and # comments skipped); refused when others may read it."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--api-key-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--api-key-file {path} cannot be read: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"--api-key-file {path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}):"
                         f" run chmod 600 {path}")  # fmt: skip
    keys = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if not keys:
        raise UsageError(f"--api-key-file {path} holds no key")
    return tuple(check_key(key, f"a key in {path}") for key in keys)


def check_key(key: str, where: str) -> str:
    if len(key) < MIN_KEY_LENGTH:
        raise UsageError(f"{where} is shorter than {MIN_KEY_LENGTH} characters: use a random key "
                         "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")  # fmt: skip
    if not key.isascii() or not key.isprintable() or " " in key:
        raise UsageError(f"{where} must be printable ASCII without spaces (it travels in an HTTP header)")
    return key


def load_keys(key_file: Path | None = None) -> tuple[str, ...]:
    """The server's keys: the file's (or `SILICONLAB_API_KEY_FILE`'s) and `SILICONLAB_API_KEY`; () when none."""
    keys: list[str] = []
    path = key_file or (Path(os.environ[ENV_KEY_FILE]) if os.environ.get(ENV_KEY_FILE) else None)
    if path is not None:
        keys += read_key_file(path)
    if os.environ.get(ENV_KEY):
        keys.append(check_key(os.environ[ENV_KEY].strip(), ENV_KEY))
    return tuple(keys)


def client_key(key_file: Path | None = None) -> str | None:
    """The key a client sends: `SILICONLAB_API_KEY`, else the first key of the file (or `SILICONLAB_API_KEY_FILE`)."""
    if os.environ.get(ENV_KEY):
        return os.environ[ENV_KEY].strip()
    path = key_file or (Path(os.environ[ENV_KEY_FILE]) if os.environ.get(ENV_KEY_FILE) else None)
    return read_key_file(path)[0] if path is not None else None


def authorized(header: str | bytes | None, keys: tuple[str, ...]) -> bool:
    """Whether an `Authorization` value is `Bearer <one of keys>`; constant-time, every key compared."""
    if not keys:
        return True
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    given_bytes = given.strip().encode("utf-8", "replace")
    match = False
    for key in keys:
        match |= hmac.compare_digest(given_bytes, key.encode())
    return match


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys: tuple[str, ...], insecure_no_auth: bool) -> None:
    """Binding beyond loopback needs a key, or the explicit `--insecure-no-auth`."""
    if keys or insecure_no_auth or is_loopback_host(host):
        return
    raise UsageError(f"--host {host} exposes the server beyond this machine without an API key: set {ENV_KEY} or "
                     "--api-key-file, or pass --insecure-no-auth")  # fmt: skip
