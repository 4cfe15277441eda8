#!/usr/bin/env bash
# GPU training throughput check: ratingbench's trainer vs the notebook's per-sample
# Dataset/DataLoader, for the attention and transformer models at full synthetic scale.
#
# Run unattended on a machine with a CUDA GPU, from anywhere:
#     tests/benchmarks/gpu_check.sh                 # full check (~2-4 min on an H200)
#     tests/benchmarks/gpu_check.sh --smoke --device cpu
# Extra arguments go to gpu_check.py. The JSON goes to $OUT/gpu_check.json when $OUT is
# set, and to stdout. Python: $PYTHON, else the repository's .venv, else python3; it needs
# torch (a CUDA build), numpy, pandas, pyarrow and scipy. Exits non-zero on any failure,
# and after CHECK_TIMEOUT_S seconds (default 470: the check must end in under 8 minutes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi

DEVICE_ARGS=(--device cuda)
for a in "$@"; do
    if [[ "$a" == --device || "$a" == --device=* ]]; then DEVICE_ARGS=(); fi
done

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'

export PYTHONUNBUFFERED=1
exec timeout --signal=TERM --kill-after=15 "${CHECK_TIMEOUT_S:-470}" \
    "$PY" tests/benchmarks/gpu_check.py "${DEVICE_ARGS[@]}" "$@"
