#!/usr/bin/env bash
# Run every test: lint, the unit tests in tests/, nbval over every notebook in notebooks/ and
# solutions/, and nbval once more with other numeric kernels (see below).
# Extra arguments go to pytest alone (e.g. `bash scripts/test.sh -x tests/test_data.py`); the
# second notebook run is then skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run 'bash scripts/setup.sh' first" >&2; exit 2; }
# What the two pytest runs test (the defaults; set them to check this script quickly).
FIRST="${GROUPREC_TEST_FIRST:-}"
SECOND="${GROUPREC_TEST_SECOND:-notebooks solutions}"

"$PY" -m ruff check . || exit 1
"$PY" -m ruff format --check . >/dev/null || {
    "$PY" -m ruff format --check .; exit 1; }

# The notebooks again, as another CPU would run them: PyTorch's portable kernels instead of the
# AVX2/AVX-512 ones, MKL limited to SSE4.2, OpenBLAS's kernels for an old core, one thread. The
# results of training then differ in their last digits, as they do on a reader's machine; the
# chapters' checks must hold all the same (nbval compares as text only what is exact everywhere).
# The notebooks train with one thread, so on a machine with two cores or more this run goes on
# beside the first one; its report is printed when both are done.
second_log=""
if [ "$#" -eq 0 ]; then
    second_log="$(mktemp)"
    # shellcheck disable=SC2086  # SECOND is a list of paths
    ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OPENBLAS_CORETYPE=Nehalem \
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" -m pytest $SECOND >"$second_log" 2>&1 &
    second_pid=$!
fi

# Beside the second run, the first runs with one thread too: two runs of several threads each
# on the same cores wait on each other's spinning threads, and a notebook cell then takes three
# times as long.
threads=()
[ -z "$second_log" ] || threads=(env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
# shellcheck disable=SC2086  # FIRST is empty (pytest's testpaths) or a list of paths
"${threads[@]}" "$PY" -m pytest $FIRST "$@"
rc=$?
# pytest exits with 5 when it collected no test at all (an empty folder): that is not a failure.
if [ "$rc" -eq 5 ]; then
    echo "no tests were collected"
    rc=0
fi
[ -n "$second_log" ] || exit "$rc"

wait "$second_pid"
rc2=$?
echo "== notebooks with other numeric kernels (portable PyTorch kernels, SSE4.2, one thread) =="
cat "$second_log"
rm -f "$second_log"
[ "$rc" -eq 0 ] || exit "$rc"
exit "$rc2"
