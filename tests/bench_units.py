"""Units that misbehave on purpose, importable by the bench's per-unit worker processes."""

from __future__ import annotations

import os
import signal

from siliconlab.units.torch_cpu import TorchCpuFp32


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
