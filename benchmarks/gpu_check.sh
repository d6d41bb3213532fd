#!/usr/bin/env bash
# GPU check for a lent device machine (JAX + PyTorch there, no TensorFlow, no registry).
#
# Here, once, in the repo root (downloads the wheels that machine lacks into .whl/):
#     bash benchmarks/gpu_check.sh --fetch-wheels
# There (device `run` with carry [".whl"]):
#     bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(keras==3.15.1 keras-hub==0.32.0 namex==0.1.0 optree==0.20.0 kagglehub==1.0.2)

if [ "${1:-}" = "--fetch-wheels" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .whl "${WHEELS[@]}"
    exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND="${KERAS_BACKEND:-jax}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/gpu_check.py --batch 256 --length 128
python3 benchmarks/gpu_check.py --batch 256 --length 128 --mixed-precision
