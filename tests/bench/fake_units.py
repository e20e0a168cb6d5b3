"""Units that misbehave (or count) on purpose, importable by the bench's per-unit worker processes (the runner
passes its import path on to them)."""

from __future__ import annotations

import os
import signal

from siliconlab.units.torch.cpu import TorchCpuFp32


class SegfaultingTorch(TorchCpuFp32):
    """Dies the way a native engine does: SIGSEGV in the middle of timing."""

    def load(self, artifact_dir, threads):
        runner = super().load(artifact_dir, threads)

        def crash(ids, mask):
            os.kill(os.getpid(), signal.SIGSEGV)

        runner.run = crash
        return runner


class RaisingTorch(TorchCpuFp32):
    def load(self, artifact_dir, threads):
        raise RuntimeError("device fell off the bus")


class HangingTorch(TorchCpuFp32):
    """Converts and passes parity, then never returns from a call while being timed: a deadlocked engine."""

    def load(self, artifact_dir, threads):
        import sys
        import time

        runner = super().load(artifact_dir, threads)
        if sys.argv[-1] != "serve":  # the convert process's parity check runs normally
            return runner

        def hang(ids, mask):
            time.sleep(3600)

        runner.run = hang
        return runner


class CountingTorch(TorchCpuFp32):
    """Records which processes checked its availability: the convert-or-reuse step does so first thing, so the
    number of distinct processes is the number of times the unit was converted or reused."""

    def availability(self):
        log = os.environ.get("SILICONLAB_TEST_CONVERT_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        return super().availability()
