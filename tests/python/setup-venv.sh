#!/usr/bin/env bash
# Creates the virtual environment of the REST API's client tests and of the Python SDK's tests
# (schemathesis, apache-airflow-client, pytest, Jinja2, pendulum: pinned in requirements.txt
# beside this script) at $UPDRAFT_TEST_VENV, default <repository>/.venv. Does nothing when that
# environment already holds exactly these requirements (a stamp records their checksum), so
# .ci/run and the tests can both call it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${UPDRAFT_TEST_VENV:-$root/.venv}"
requirements="$here/requirements.txt"
stamp="$venv/requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

ready() { [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; }
if ready; then
    exit 0
fi
# Test processes (nextest runs each test in its own) may all find it missing at once: one
# creates it while the others wait, then find it ready.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ready; then
    exit 0
fi
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || {
    echo "setup-venv: $python not found; the REST API client tests need Python 3.9 or newer" >&2
    exit 1
}
echo "setup-venv: creating $venv from $requirements" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$requirements"
echo "$want" >"$stamp"
echo "setup-venv: ready ($("$venv/bin/schemathesis" --version))" >&2
