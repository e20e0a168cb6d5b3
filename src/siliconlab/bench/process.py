"""The parent's side of one unit's worker process: start it, talk to it line by line under a deadline, and say
in one line why it died.

Every unit runs in processes of its own (one to convert or reuse its artifact, one to time it), so a native
crash, a leak or a hang in one engine ends only that unit.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: "pkg.mod.Name: " or "SomeError: " at the start of a traceback's last line.
_CLASS_PREFIX = re.compile(r"^(?:(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*|[A-Za-z_]\w*(?:Error|Exception|Fail|Failure|Exit)): ")


def plain_error(line: str) -> str:
    """A traceback's last line without the exception's class path: "onnxruntime.capi...Fail: bad model" ->
    "bad model". The user needs the message, not where in a library it was raised."""
    return _CLASS_PREFIX.sub("", line.strip(), count=1)


def death_message(mode: str, code: int | None, hung: bool, last_error: str) -> str:
    """The one line a failed unit process leaves in the results (and the progress display)."""
    last_error = plain_error(last_error)
    if hung:
        how = "did not answer in time and was killed"
    elif code is not None and code < 0:
        how = f"killed by signal {-code}"
    else:
        how = f"exited with {code}"
    return f"unit process ({mode}) {how}: {last_error}"[:400]


class WorkerProcess:
    """`python -m siliconlab.bench.worker JOB MODE`: JSON lines out on stdout, commands in on stdin.

    The child sees the parent's import path, so units defined outside the package run isolated too.
    """

    def __init__(self, job_path: Path, mode: str, env: dict[str, str] | None = None):
        self.mode = mode
        self.stderr_path = job_path.with_suffix(f".{mode}.stderr")
        self._stderr = self.stderr_path.open("w")
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)} | (env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "siliconlab.bench.worker", str(job_path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
            env=env,
        )
        self._pending = b""
        self.hung = False

    def _line(self, deadline: float) -> bytes | None:
        """One protocol line, read unbuffered so a deadline can be kept; None at EOF or when it passes."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.hung = True
                    self.process.kill()
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def receive(self, expect: str, timeout_s: float) -> dict[str, Any] | None:
        """The next message of type `expect`; None when the process ended (or hung) first."""
        deadline = time.monotonic() + timeout_s
        while (line := self._line(deadline)) is not None:
            message = json.loads(line)
            if message["type"] == expect:
                return message
        return None

    def request(self, command: dict[str, Any], expect: str, timeout_s: float) -> dict[str, Any] | None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(command) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self.receive(expect, timeout_s)

    def exit_code(self, timeout_s: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.hung = True
            self.process.kill()
            return self.process.wait()

    def death(self) -> str:
        """Why the process stopped answering: its exit (or our kill) and the last line it wrote to stderr."""
        code = self.exit_code()
        self._stderr.flush()
        tail = [line for line in self.stderr_path.read_text().strip().splitlines() if line.strip()]
        return death_message(self.mode, code, self.hung, tail[-1] if tail else "no output")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.request({"cmd": "quit"}, "never", 30.0)
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, ValueError):
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.close()
        self.stderr_path.unlink(missing_ok=True)
