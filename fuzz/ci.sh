#!/usr/bin/env bash
# The short AFL++ run of every fuzz target that tests/all.sh (and so CI) ends with:
# `fuzz/ci.sh [build|run] [seconds per target]` (default: both steps, 20 s a target).
# `build` installs cargo-afl when missing (it builds the AFL++ it ships) and builds the
# instrumented targets; tests/all.sh runs it in the background at the lowest priority while
# the test suite runs, so that it takes only the CPU the tests leave idle. `run` fuzzes each
# target and fails on any crash, and on any hang that still hangs when replayed for 10 s
# outside AFL (which tells a true hang from a slow execution on a loaded machine).
#
# Cheap on purpose: the instrumented binaries are built at opt-level 1 without debug info
# (`AFL_OPT_LEVEL`; cargo-afl's default of 3 with one codegen unit took 12.5 minutes here),
# and AFL starts from the hand-written seeds and the named regression inputs only: the
# thousands of `q-*` files of the long runs are replayed by `cargo test` already, and AFL's
# calibration of them alone would take minutes. Long runs: run.sh.
set -euo pipefail
cd "$(dirname "$0")"
step=all
case "${1:-}" in
    build | run) step="$1"; shift ;;
esac
seconds="${1:-20}"
export CARGO_TARGET_DIR="${UPDRAFT_FUZZ_TARGET_DIR:-$PWD/target/ci}"
if [ "$step" != run ]; then
    if ! command -v cargo-afl >/dev/null; then
        cargo install cargo-afl --locked --quiet
    fi
    # Builds the AFL++ that cargo-afl ships, once per Rust version (it refuses to build twice).
    cargo afl config --build >/dev/null 2>&1 || true
    AFL_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false cargo afl build --release --quiet
fi
if [ "$step" = build ]; then exit 0; fi
status=0
for target in dagfile schedule template execution_body; do
    out="out/ci-$target"
    rm -rf "$out" "$out.seeds"
    mkdir -p "$out.seeds"
    find "corpus/$target" -type f ! -name 'q-*' -exec cp {} "$out.seeds/" \;
    if ! AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_FAST_CAL=1 \
        AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 \
        cargo afl fuzz -V "$seconds" -t 2000 -m 2048 -i "$out.seeds" \
        -o "$out" "$CARGO_TARGET_DIR/release/$target" >"$out.log" 2>&1; then
        tail -20 "$out.log" >&2
        echo "fuzz: $target did not run; see fuzz/$out.log" >&2
        status=1
        continue
    fi
    found="$out/default"
    crashes=$(find "$found/crashes" -type f ! -name README.txt | wc -l)
    hangs=0
    for input in $(find "$found/hangs" -type f ! -name README.txt); do
        replayed=0
        timeout 10 "$CARGO_TARGET_DIR/release/$target" <"$input" >/dev/null 2>&1 || replayed=$?
        if [ "$replayed" = 0 ]; then
            continue
        elif [ "$replayed" != 124 ]; then
            crashes=$((crashes + 1))
            echo "fuzz: $target crashes (exit $replayed) on fuzz/$input, saved as a hang" >&2
        else
            hangs=$((hangs + 1))
            echo "fuzz: $target hangs on fuzz/$input" >&2
        fi
    done
    for input in $(find "$found/crashes" -type f ! -name README.txt); do
        echo "fuzz: $target crashes on fuzz/$input" >&2
    done
    execs=$(sed -n 's/^execs_done *: //p' "$found/fuzzer_stats")
    echo "fuzz: $target: $execs executions in ${seconds} s, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then status=1; fi
done
exit "$status"
