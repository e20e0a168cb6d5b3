#!/usr/bin/env bash
# The GPU machine, one call: the monitor records (and draws its dashboard for) a bench on the GPU.
#   bash benchmarks/monitor/gpu_run.sh OUT_DIR     (wheels for typer/rich/psutil/nvidia-ml-py in .gpu-wheels/)
# OUT_DIR gets gpu-run.tar.gz with: gpu.csv (every poll), monitor-frame.txt (the dashboard's last frame),
# dashboard.txt/.svg (a frame taken mid-bench), nvml-h100.json (NVML's raw answers under load, replayed by
# tests/monitor/test_gpu.py), overhead-gpu.txt (the sampler's cost there) and the bench JSON/Markdown;
# the two frames are also copied next to it.
set -uo pipefail
out=${1:?usage: gpu_run.sh OUT_DIR}
cd "$(dirname "$0")/../.."
[ -d .gpu-wheels ] && python3 -m pip install --no-index --no-deps -q .gpu-wheels/*.whl 2>&1 | tail -2
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
work=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv
python3 benchmarks/monitor/overhead.py --sampler-only --seconds 4 > "$work/overhead-gpu.txt" 2>&1
cat "$work/overhead-gpu.txt"
(sleep 25; python3 benchmarks/monitor/record_nvml.py "$work/nvml-h100.json" --samples 12 --interval 0.5) &
(python3 benchmarks/monitor/snapshot.py "$work/dashboard" --after 30 --seconds 2 > /dev/null) &
python3 -m siliconlab monitor --dashboard --interval 0.5 --record "$work/gpu.csv" -- \
    python3 -m siliconlab bench bert-base --units torch-cuda-fp32,torch-cuda-fp16,torch-cuda-bf16 \
    --baseline torch-cuda-fp32 --batch 1,32 --seq 128 --quick --no-floor --no-charts --monitor --out "$work/bench" \
    > "$work/monitor-frame.txt" 2> "$work/monitor-stderr.txt"
echo "monitor exit code: $?"
wait
tail -5 "$work/monitor-stderr.txt"
cp "$work/monitor-frame.txt" "$work/dashboard.txt" "$out/" 2>/dev/null
tar -C "$work" -czf "$out/gpu-run.tar.gz" .
ls -la "$work" "$work/bench"
