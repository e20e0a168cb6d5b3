"""Record a real GPU's NVML answers, call by call, so the tests can replay them without a GPU.

    python benchmarks/monitor/record_nvml.py OUT.json [--samples 10] [--interval 0.5]

For every device and poll it stores what each NVML function that `siliconlab.monitor.gpu.NvmlGpu` calls
returned (or the NVML error's text where the board does not support it). tests/monitor/test_gpu.py feeds the
file to a stand-in `pynvml` module, so NvmlGpu's arithmetic and decoding run on a real H100's numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pynvml

CALLS = {  # name -> (args after the handle, how to store the answer)
    "nvmlDeviceGetMemoryInfo": ((), lambda m: {"used": int(m.used), "total": int(m.total)}),
    "nvmlDeviceGetUtilizationRates": ((), lambda u: {"gpu": int(u.gpu), "memory": int(u.memory)}),
    "nvmlDeviceGetPowerUsage": ((), int),
    "nvmlDeviceGetEnforcedPowerLimit": ((), int),
    "nvmlDeviceGetTemperature": ((0,), int),
    "nvmlDeviceGetClockInfo": ((1,), int),
    "nvmlDeviceGetMaxClockInfo": ((1,), int),
    "nvmlDeviceGetCurrentClocksThrottleReasons": ((), int),
    "nvmlDeviceGetTotalEnergyConsumption": ((), int),
}


def poll(handle: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {"t": time.time()}
    for name, (args, store) in CALLS.items():
        try:
            answers[name] = store(getattr(pynvml, name)(handle, *args))
        except pynvml.NVMLError as exc:
            answers[name] = {"error": str(exc)}
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    pynvml.nvmlInit()
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        devices.append({"index": index, "name": name.decode() if isinstance(name, bytes) else name, "polls": []})
    for _ in range(args.samples):
        for device in devices:
            device["polls"].append(poll(pynvml.nvmlDeviceGetHandleByIndex(device["index"])))
        time.sleep(args.interval)
    record = {"driver": str(pynvml.nvmlSystemGetDriverVersion()), "nvml_py": getattr(pynvml, "__version__", ""),
              "devices": devices}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1))
    print(f"recorded {args.samples} polls of {len(devices)} GPU(s) to {args.out}")


if __name__ == "__main__":
    main()
