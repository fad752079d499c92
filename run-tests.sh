#!/usr/bin/env bash
# Run the whole test suite (creates ./.venv and installs the project with its test tools first).
# Extra arguments go to pytest, e.g. ./run-tests.sh -k conformance
set -eu
. "$(dirname "$0")/scripts/venv.sh" "[test]"
cd "$ROOT"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest -n auto "$@"
