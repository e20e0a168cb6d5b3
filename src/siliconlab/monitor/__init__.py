"""Sensors: one `Source` interface (sampler.py) for energy counters and machine load, polled by a `Sampler`.

energy.py: `meter_for(device)` — the bench's per-block energy meter (RAPL, NVML, powermetrics or n/a + reason).
load.py: load average, /proc/stat busy/steal, per-core use, memory/swap, other processes' CPU, cpufreq.
rapl.py, nvml.py, powermetrics.py: the device counters themselves. Nothing here imports siliconlab.bench.
"""
