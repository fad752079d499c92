#!/usr/bin/env bash
# Start the KMS on SQLite at http://127.0.0.1:9998 (creates ./.venv and installs the project first).
# Extra arguments go to kms-server, e.g. ./run-kms.sh --clear-database
set -eu
. "$(dirname "$0")/scripts/venv.sh" ""
cd "$ROOT"
exec "$VENV/bin/kms-server" --database-type sqlite --sqlite-path ./sqlite-data --hostname 127.0.0.1 --port 9998 "$@"
