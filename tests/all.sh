#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints (clippy with warnings denied, rustdoc's
# broken intra-doc links, unused dependencies), then every test of the workspace.
# cargo-machete (the unused-dependency check) is installed on first use. Then the Python SDK's
# pytest suite (sdk/python), and last a short run of every fuzz target (fuzz/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
# The fuzz targets' instrumented build (fuzz/ci.sh) runs beside everything below at the lowest
# priority, on the CPU the lints and tests leave idle; the short fuzz run itself comes last.
# UPDRAFT_SKIP_FUZZ=1 leaves both out of a local run; CI always runs them.
fuzz=0
if [ -n "${CI:-}" ] || [ "${UPDRAFT_SKIP_FUZZ:-0}" != 1 ]; then
    fuzz=1
    fuzz_log="$(mktemp)"
    # A process group of its own, so that an early exit stops the build with everything it ran.
    setsid nice -n 19 fuzz/ci.sh build >"$fuzz_log" 2>&1 &
    fuzz_build=$!
    # Under `set -e` a failing command in the trap would become the script's exit status.
    trap 'kill -- -"$fuzz_build" 2>/dev/null || kill "$fuzz_build" 2>/dev/null || true
        rm -f "$fuzz_log"' EXIT
fi
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links" \
    cargo doc --workspace --no-deps --all-features --quiet
if ! command -v cargo-machete >/dev/null; then
    cargo install cargo-machete --locked --quiet
fi
cargo machete
cargo test --workspace --all-features
# The Python SDK's own suite (its loader checks use the updraft binary built just above), with
# the Airflow parity check: Airflow's example DAGs from the pinned wheels, which it downloads
# into .cache/airflow-parity on first use (docs/airflow-parity.md).
sdk/python/run-tests.sh
# A short coverage-guided run of every fuzz target (AFL++ through cargo-afl, 20 s a target).
if [ "$fuzz" = 1 ]; then
    if ! wait "$fuzz_build"; then
        cat "$fuzz_log" >&2
        echo "fuzz: the instrumented build failed" >&2
        exit 1
    fi
    fuzz/ci.sh run
fi
