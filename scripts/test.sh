#!/usr/bin/env bash
# Run every test: lint, the unit tests in tests/, and nbval over every notebook in notebooks/.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -x tests/test_data.py`).
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
    exit 0
fi
exit "$rc"
