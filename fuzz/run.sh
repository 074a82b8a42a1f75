#!/usr/bin/env bash
# Fuzzes one target with AFL++ for a while: `fuzz/run.sh <target> <minutes>`.
# Targets: dagfile, schedule, template, execution_body (src/bin/). Needs cargo-afl
# (`cargo install cargo-afl` then `cargo afl config --build`, which builds the AFL++ it ships).
# Seeds come from corpus/<target>; findings go to out/<target>/default/{crashes,hangs}, new
# inputs to its queue/ (out/ is not committed). With MERGE=1 the queue, minimised with
# afl-cmin, is added to corpus/<target> afterwards as q-<hash> files (what was there stays). Prints AFL's figures at the end.
# Environment: CARGO_TARGET_DIR (default fuzz/target), AFL_TIMEOUT_MS (a hang, default 2000),
# AFL_MEMORY_MB (the memory bound, default 2048).
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh <target> <minutes>}"
minutes="${2:?usage: fuzz/run.sh <target> <minutes>}"
[ -f "src/bin/$target.rs" ] || { echo "no such target: $target" >&2; exit 2; }
[ -d "corpus/$target" ] || { echo "no corpus for $target" >&2; exit 2; }
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target_dir"
nice -n 19 cargo afl build --release --quiet --bin "$target"
out="out/$target"
mkdir -p "$out"
# A run that resumes keeps its queue (AFL reads `-i -` as "go on from out/").
input="corpus/$target"
if [ -f "$out/default/fuzzer_stats" ]; then input="-"; fi
# No UI, no CPU pinning (the machine is shared), crashes are not sent to a core handler.
AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_SKIP_CRASHES=1 AFL_AUTORESUME=1 \
    nice -n 19 cargo afl fuzz -V "$((minutes * 60))" -t "${AFL_TIMEOUT_MS:-2000}" \
    -m "${AFL_MEMORY_MB:-2048}" -i "$input" -o "$out" "$target_dir/release/$target" \
    >"$out/afl.log" 2>&1 || { tail -30 "$out/afl.log" >&2; exit 1; }
stats="$out/default/fuzzer_stats"
for key in run_time execs_done execs_per_sec corpus_count bitmap_cvg edges_found saved_crashes saved_hangs; do
    printf '%-14s %s\n' "$key" "$(sed -n "s/^$key *: //p" "$stats")"
done
if [ "${MERGE:-0}" = 1 ]; then
    # The awk afl-cmin that cargo-afl's AFL++ ships: its Python afl-cmin (what `cargo afl cmin`
    # runs) was seen to stall, idle, without keeping anything.
    afl_bin="$(dirname "$(ls -d "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-cmin.awk | tail -1)")"
    merged="$(mktemp -d)"
    AFL_PATH="$afl_bin" AFL_NO_AFFINITY=1 nice -n 19 "$afl_bin/afl-cmin.awk" \
        -i "$out/default/queue" -o "$merged/min" \
        -t "${AFL_TIMEOUT_MS:-2000}" -m "${AFL_MEMORY_MB:-2048}" \
        -- "$target_dir/release/$target" >"$out/cmin.log" 2>&1
    if [ -z "$(ls -A "$merged/min" 2>/dev/null)" ]; then
        echo "corpus/$target: afl-cmin kept nothing (see $out/cmin.log); the corpus is left as it was" >&2
    else
        # Added under names of their content (AFL's names hold ':' and ','); what was there
        # stays (the seeds, the named regression inputs crash-*, hang-*, bound-*).
        for input in "$merged/min"/*; do
            cp -n "$input" "corpus/$target/q-$(md5sum "$input" | cut -c1-12)"
        done
        echo "corpus/$target: $(ls "corpus/$target" | wc -l) files after merging"
    fi
    rm -rf "$merged"
fi
crashes=$(find "$out/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)
hangs=$(find "$out/default/hangs" -type f 2>/dev/null | wc -l)
if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
    echo "$target: $crashes crashes, $hangs hangs in $out/default/" >&2
    exit 1
fi
