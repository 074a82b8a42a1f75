#!/usr/bin/env bash
# Runs the Python SDK's pytest suite with the repository's test environment (created by
# tests/python/setup-venv.sh, which pins pytest and Jinja2). Extra arguments go to pytest.
# The loader check (tests/test_updraft_loads.py) uses $UPDRAFT_BIN, or a built updraft binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$root/tests/python/setup-venv.sh"
venv="${UPDRAFT_TEST_VENV:-$root/.venv}"
cd "$here"
exec "$venv/bin/python" -m pytest -q "$@"
