#!/usr/bin/env bash
# The GPU checks of issues 6 and 8 as one prepared run, for a session lent a GPU machine (the tool library's
# `device` tool; its image has python3 with a CUDA PyTorch, numpy, safetensors, scikit-learn, pytest, onnx).
#
#   here, once:     scripts/device_check.sh --prepare     # copies Fashion-MNIST into .devdata/ (git-ignored)
#   there:          run(command="bash scripts/device_check.sh", carry=[".devdata"], timeout_s=600)
#
# In order, each with its own time limit so the figures come back even if a later step hangs: the GPU and
# PyTorch versions; tests/test_cuda.py (bf16 and fp16 with loss scaling, channels_last, resumption; NCCL
# when there are two GPUs); bench/train_speed.py --device cuda --quick (DCGAN 28x28 and 64x64, MLP); then
# the whole test suite, which trains on the GPU wherever train.device is "auto". Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
    mkdir -p .devdata/fashion-mnist
    cp /usr/share/datasets/fashion-mnist/*.gz .devdata/fashion-mnist/
    du -sh .devdata
    exit 0
fi
OUT=${OUT:-/tmp/gankit-device-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/src:$PWD/tests PYTHONUNBUFFERED=1
if [ -d .devdata/fashion-mnist ]; then
    export GANKIT_FASHION_DIR=$PWD/.devdata/fashion-mnist
    [ -d /usr/share/datasets/fashion-mnist ] || { mkdir -p /usr/share/datasets && cp -r .devdata/fashion-mnist /usr/share/datasets/; }
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.device_count(), 'GPU(s)')"
  nproc; } 2>&1 | tee "$OUT/machine.txt"
timeout 240 $PY -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"
timeout 200 $PY bench/train_speed.py --device cuda --quick 2>&1 | tee "$OUT/train_speed.log"
timeout 300 $PY -m pytest -q -p no:cacheprovider -n 8 tests 2>&1 | tail -60 | tee "$OUT/suite.log"
