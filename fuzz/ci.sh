#!/usr/bin/env bash
# A short AFL++ run of every fuzz target: `fuzz/ci.sh [seconds per target]` (default 30).
# Not part of tests/all.sh: the instrumented release build alone takes longer than CI's budget
# for fuzzing (figures in fuzz/README.md); CI replays every corpus file and every crash found
# through `cargo test` instead. Installs cargo-afl and builds its AFL++ when missing.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
if ! command -v cargo-afl >/dev/null; then
    cargo install cargo-afl --locked --quiet
fi
# Builds the AFL++ that cargo-afl ships, once per Rust version (it refuses to build twice).
cargo afl config --build >/dev/null 2>&1 || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
nice -n 19 cargo afl build --release --quiet
status=0
for target in dagfile schedule template execution_body; do
    rm -rf "out/ci-$target"
    if ! AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
        AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 \
        nice -n 19 cargo afl fuzz -V "$seconds" -t 2000 -m 2048 -i "corpus/$target" \
        -o "out/ci-$target" "$CARGO_TARGET_DIR/release/$target" >"out/ci-$target.log" 2>&1; then
        echo "fuzz: $target did not run; see fuzz/out/ci-$target.log" >&2
        status=1
        continue
    fi
    found=$(find "out/ci-$target/default/crashes" "out/ci-$target/default/hangs" -type f \
        ! -name README.txt | wc -l)
    execs=$(sed -n 's/^execs_done *: //p' "out/ci-$target/default/fuzzer_stats")
    echo "fuzz: $target: $execs executions, $found crashes or hangs"
    if [ "$found" -gt 0 ]; then status=1; fi
done
exit "$status"
