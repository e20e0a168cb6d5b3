"""A stand-in `pynvml` that replays a recording of a real GPU's NVML answers (fixtures/nvml-h100.json)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

RECORDING = json.loads((Path(__file__).parent / "fixtures" / "nvml-h100.json").read_text())


class NotSupported(Exception):
    pass


class RecordedNvml:
    """pynvml's calls, answering from the recording one poll at a time (each read advances on MemoryInfo)."""

    def __init__(self, recording: dict, drop: tuple[str, ...] = ()):
        self.devices, self.drop, self.step = recording["devices"], drop, -1

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return self.devices[handle]["name"]

    #: Newer nvidia-ml-py names for the same NVML calls as the recorder used.
    ALIASES = {"nvmlDeviceGetCurrentClocksEventReasons": "nvmlDeviceGetCurrentClocksThrottleReasons"}

    def _answer(self, name, handle):
        name = self.ALIASES.get(name, name)
        poll = self.devices[handle]["polls"][max(self.step, 0) % len(self.devices[handle]["polls"])]
        value = poll[name]
        if name in self.drop or isinstance(value, dict) and "error" in value:
            raise NotSupported(value.get("error") if isinstance(value, dict) else "Not Supported")
        return value

    def nvmlDeviceGetMemoryInfo(self, handle):
        self.step += 1
        return SimpleNamespace(**self._answer("nvmlDeviceGetMemoryInfo", handle))

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(**self._answer("nvmlDeviceGetUtilizationRates", handle))

    def __getattr__(self, name):
        if name.startswith("nvmlDevice"):
            return lambda handle, *args: self._answer(name, handle)
        raise AttributeError(name)
