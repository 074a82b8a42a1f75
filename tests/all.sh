#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints (clippy with warnings denied, rustdoc's
# broken intra-doc links, unused dependencies), then every test of the workspace, and last the
# Python SDK's pytest suite (sdk/python) beside a short run of every fuzz target (fuzz/ci.sh).
#
# Most tests wait on real processes (schedulers, workers, task processes, a browser), so one
# test binary after another left a core idle: cargo-nextest, when installed (these machines
# have it), runs the tests of every binary side by side, each in a process of its own
# (.config/nextest.toml); without it, `cargo test` runs them as before. The tools the check
# needs and lacks (cargo-machete, cargo-afl) are built in the background at the lowest
# priority, on the CPU the lints leave idle.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check

logs="$(mktemp -d)"
background_pids=()
# Each in a process group of its own, so that an early exit stops it with everything it ran.
background() {
    local name="$1"
    shift
    setsid "$@" >"$logs/$name.log" 2>&1 &
    background_pids+=("$!")
    eval "${name}_pid=$!"
}
# Waits for the background step NAME; on failure shows its output and stops the check.
finish() {
    local name="$1" pid_var="${1}_pid"
    if ! wait "${!pid_var}"; then
        cat "$logs/$name.log" >&2
        echo "all.sh: $name failed" >&2
        exit 1
    fi
}
stop_background() {
    for pid in "${background_pids[@]}"; do
        kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    done
    rm -rf "$logs"
}
# Under `set -e` a failing command in the trap would become the script's exit status.
trap 'stop_background || true' EXIT

# The fuzz targets' instrumented build; the short fuzz run itself comes last.
# UPDRAFT_SKIP_FUZZ=1 leaves both out of a local run; CI always runs them.
fuzz=0
if [ -n "${CI:-}" ] || [ "${UPDRAFT_SKIP_FUZZ:-0}" != 1 ]; then
    fuzz=1
    background fuzz_build nice -n 19 fuzz/ci.sh build
fi
if ! command -v cargo-machete >/dev/null; then
    background machete_install nice -n 19 cargo install cargo-machete --locked --quiet
fi
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links" \
    cargo doc --workspace --no-deps --all-features --quiet

# Everything the tests run, the updraft binary included. The bench harness's tests and the
# Python suite run a copy of that binary ($UPDRAFT_BIN): they would otherwise build their own
# (the harness's, without the test features) over the one the other tests are starting.
cargo test --workspace --all-features --no-run --quiet
cp "${CARGO_TARGET_DIR:-target}/debug/updraft" "$logs/updraft"
export UPDRAFT_BIN="$logs/updraft"
if command -v cargo-nextest >/dev/null; then
    cargo nextest run --workspace --all-features --profile ci
    # nextest runs no doc tests.
    cargo test --workspace --all-features --doc --quiet
else
    cargo test --workspace --all-features
fi
if [ -n "${machete_install_pid:-}" ]; then
    finish machete_install
fi
cargo machete
# A short coverage-guided run of every fuzz target (AFL++ through cargo-afl, 20 s a target, on
# one core) beside the Python SDK's own suite. Not the suite beside the Rust tests: together
# they took longer than one after the other (10.6 min against 5.7 + 2.2), and a test waiting
# on a Python process timed out.
if [ "$fuzz" = 1 ]; then
    finish fuzz_build
    background fuzz_run fuzz/ci.sh run
fi
# The Python suite's loader checks use $UPDRAFT_BIN; its Airflow parity check reads Airflow's
# example DAGs from the pinned wheels, which it downloads into .cache/airflow-parity on first
# use (docs/airflow-parity.md).
sdk/python/run-tests.sh
if [ "$fuzz" = 1 ]; then
    finish fuzz_run
    cat "$logs/fuzz_run.log"
fi
