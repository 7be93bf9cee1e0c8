#!/usr/bin/env bash
# Install the package and its test dependencies in ./.venv, then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
export STPIPE_DISABLE_CRDS_STEPPARS=true MPLBACKEND=Agg
# One worker per core (pytest-xdist): the suite's end-to-end tests are
# independent; give -n 0 to run in one process.
exec .venv/bin/python -m pytest -n auto "$@"
