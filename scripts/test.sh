#!/usr/bin/env bash
# Run every test: lint, the unit tests in tests/, nbval over every notebook in notebooks/ and
# solutions/, and nbval once more with other numeric kernels (see below).
# Extra arguments go to pytest alone (e.g. `bash scripts/test.sh -x tests/test_data.py`); the
# second notebook run is then skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run 'bash scripts/setup.sh' first" >&2; exit 2; }

"$PY" -m ruff check . || exit 1
"$PY" -m ruff format --check grouprec tests benchmarks scripts >/dev/null || {
    "$PY" -m ruff format --check grouprec tests benchmarks scripts; exit 1; }

"$PY" -m pytest "$@"
rc=$?
# pytest exits with 5 when it collected no test at all (an empty folder): that is not a failure.
if [ "$rc" -eq 5 ]; then
    echo "no tests were collected"
    rc=0
fi
[ "$rc" -eq 0 ] || exit "$rc"
[ "$#" -eq 0 ] || exit 0

# The notebooks again, as another CPU would run them: PyTorch's portable kernels instead of the
# AVX2/AVX-512 ones, MKL limited to SSE4.2, OpenBLAS's kernels for an old core, one thread. The
# results of training then differ in their last digits, as they do on a reader's machine; the
# chapters' checks must hold all the same (nbval compares as text only what is exact everywhere).
echo "== notebooks with other numeric kernels (portable PyTorch kernels, SSE4.2, one thread) =="
ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OPENBLAS_CORETYPE=Nehalem \
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" -m pytest notebooks solutions
