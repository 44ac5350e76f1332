#!/usr/bin/env bash
# bench/gpu.sh: GPU training-step speed of tinyst vs sentence-transformers (bf16 and fp16, MPNet-base
# shape, tokens/s and MFU); about 2-3 minutes on one H100/H200. Run from anywhere:  bash bench/gpu.sh
# Needs python3 with torch (CUDA), tokenizers, safetensors, numpy, pyarrow and sentence-transformers;
# tinyst is used from this checkout. Extra arguments go to bench/bench_gpu.py (e.g. --batch 32).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: bench/gpu.sh needs a GPU')"
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 "$PY" bench/bench_gpu.py --device cuda "$@"
