#!/usr/bin/env bash
# GPU check for a maintainer, on a machine with a CUDA GPU (about 2 minutes on an NVIDIA H200):
# the tests marked `cuda` (CPU/CUDA parity, no host synchronisation inside a training step), then
# the AGREE epoch benchmark on CUDA and on the CPU, each beside its goal.
#
#   GROUPREC_DATA=/path/to/data benchmarks/gpu_check.sh            # python from PATH
#   PYTHON=.venv/bin/python GROUPREC_DATA=/path/to/data benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

"$PYTHON" -c 'import sys, torch; sys.exit(None if torch.cuda.is_available() else "no CUDA GPU here")'
"$PYTHON" -m pytest -o addopts= -m cuda tests -q
"$PYTHON" benchmarks/bench_agree_epoch.py --device cuda cpu
"$PYTHON" benchmarks/bench_agree_epoch.py --device cpu --threads 2
