"""Decoder units that misbehave on purpose, importable by the bench's per-unit worker processes (the runner
passes its import path on to them)."""

from __future__ import annotations

import sys
import time

from siliconlab.units.torch.cpu_generate import TorchCpuFp32Decoder


class HangingDecoder(TorchCpuFp32Decoder):
    """Converts and passes parity, then never returns from generate() while being timed: a deadlocked engine."""

    def load(self, artifact_dir, threads):
        runner = super().load(artifact_dir, threads)
        if sys.argv[-1] != "serve":  # the convert process's parity check runs normally
            return runner

        def hang(*args, **kwargs):
            time.sleep(3600)

        runner.generate = hang
        return runner
