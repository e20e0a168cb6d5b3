#!/usr/bin/env bash
# The CPU instruction-set figures on the lent GPU machine's host (Intel Xeon with AMX, 16 cores): the ISA tests
# pinned to 2 cores, then `siliconlab bench` of every CPU unit at 16 threads (which also converts) and pinned to
# 2 cores (taskset; threads set explicitly: os.cpu_count() ignores the mask). Writes results under $OUT.
# Needs: openvino installed first (its wheel alone fills one call's carry), the rest carried in .gpu-wheels/.
set -uo pipefail
OUT=${OUT:-/tmp/amx-out}; mkdir -p "$OUT"
python3 -m pip install --quiet --no-index --no-deps .gpu-wheels/*.whl 2>&1 | tail -2
python3 -c "import openvino, nncf; print('openvino', openvino.__version__, 'nncf', nncf.__version__)" || { echo "openvino/nncf missing"; exit 3; }
export PYTHONPATH=$PWD/src SILICONLAB_CACHE=/tmp/slc HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
lscpu | grep -E "Model name|^CPU\(s\)" ; python3 -c "from siliconlab.cpu_features import detect; print(detect().summary())"
SL="python3 -m siliconlab"
CPU_UNITS=torch-cpu-fp32,onnxruntime-cpu-fp32,onnxruntime-cpu-int8,openvino-cpu-fp32,openvino-cpu-int8,openvino-cpu-bf16,openvino-cpu-int8-static
UNITS=torch-cpu-fp32,onnxruntime-cpu-int8,openvino-cpu-fp32,openvino-cpu-bf16,openvino-cpu-int8-static
THREADS=${THREADS:-16 2}  # one call each fits the 10-minute limit better
# A MiniLM-architecture folder with seeded random weights: MiniLM's own weights (88 MB) do not fit the carry;
# timing depends on the architecture, not the weights (accuracy figures come from the dev machines).
python3 - <<'PY'
import torch
from transformers import AutoTokenizer, BertConfig, BertModel
from siliconlab.models.minilm import tokenizer_directory
torch.manual_seed(0)
config = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
BertModel(config).eval().save_pretrained("/tmp/minilm-arch", safe_serialization=True)
AutoTokenizer.from_pretrained(tokenizer_directory()).save_pretrained("/tmp/minilm-arch")
PY
stage() { echo "== $1 $(date +%T)"; }
if [ "$THREADS" != 2 ]; then
stage "ISA tests, 2 cores"
taskset -c 0,1 python3 -m pytest -q -p no:cacheprovider tests/test_cpu_features.py tests/units/test_cpu_isa_units.py \
    tests/units/test_openvino.py 2>&1 | tail -4
stage "convert minilm-arch, every CPU unit (exit code checked)"
$SL convert /tmp/minilm-arch --units $CPU_UNITS --out "$SILICONLAB_CACHE" > "$OUT/convert.txt" 2>&1; echo "convert exit $?"
grep -v "Loading\|━" "$OUT/convert.txt" | tail -14
fi
for threads in $THREADS; do
    pin=""; [ "$threads" = 2 ] && pin="taskset -c 0,1"
    stage "bert-base B1 S128, $threads threads"
    $pin $SL bench bert-base --units $UNITS --batch 1 --seq 128 --threads $threads --min-seconds 2 --no-charts \
        --out "$OUT/t$threads" 2>&1 | grep -v "Loading\|━" | tail -16
    stage "minilm-arch real sentence B1 and text B32, $threads threads"
    $pin $SL bench /tmp/minilm-arch --units $UNITS --text "a gorgeous, witty, seductive movie." --threads $threads \
        --min-seconds 2 --no-charts --out "$OUT/t$threads" 2>&1 | grep -v "Loading\|━" | tail -12
    $pin $SL bench /tmp/minilm-arch --units $UNITS --workload text --batch 32 --threads $threads --min-seconds 2 \
        --no-charts --out "$OUT/t$threads" 2>&1 | grep -v "Loading\|━" | tail -12
done
stage done
