#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints (clippy with warnings denied, rustdoc's
# broken intra-doc links, unused dependencies), then every test of the workspace.
# cargo-machete (the unused-dependency check) is installed on first use. Last, the Python SDK's
# pytest suite (sdk/python).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
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
