#!/usr/bin/env bash
# The long run of the property suite ("fuzzing" on stable Rust): every property test
# (`props` modules of protocol, engine and storage) in release mode, one at a time, with
# many cases, timed one by one. `cargo test` runs the same properties with a few hundred
# cases each; this runs as many as you ask for.
#
#   scripts/fuzz.sh                        100000 cases per property
#   scripts/fuzz.sh --cases 1000000        a million cases per property
#   scripts/fuzz.sh --seconds 60           each property repeated in batches of --cases
#                                          until it has run at least 60 s
#   scripts/fuzz.sh --filter tokens        only properties whose name contains "tokens"
#   scripts/fuzz.sh --out DIR              also write DIR/results.tsv and DIR/fuzz.txt
#
# Each batch is a fresh run with a fresh random seed (proptest's default), so repeated
# batches explore new cases. On a shared machine run it under `nice -n 19`.
#
# Prints one line per property: cases run, seconds, cases per second; then the totals.
# Stops at the first failing property with proptest's report (the minimal failing input,
# and the seed saved under <crate>/proptest-regressions/) and exits 1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

cases=100000
seconds=0
filter=""
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --filter) filter="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "fuzz.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$cases" =~ ^[0-9]+$ && "$cases" -gt 0 ]] || { echo "fuzz.sh: --cases must be a positive integer" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds must be a whole number" >&2; exit 2; }

packages=(-p hellojohn-protocol -p hellojohn-engine -p hellojohn-storage)
echo "== building the test binaries (release)" >&2
mapfile -t binaries < <(
    cargo test --release --no-run --lib "${packages[@]}" --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
)
if [[ ${#binaries[@]} -eq 0 ]]; then
    # Show the build errors.
    cargo test --release --no-run --lib "${packages[@]}"
    echo "fuzz.sh: no test binaries were built" >&2
    exit 1
fi

if [[ -n "$out" ]]; then
    mkdir -p "$out"
    exec > >(tee "$out/fuzz.txt") 2>&1
    printf 'property\tcases\tseconds\tcases_per_second\n' >"$out/results.tsv"
fi

now() { date +%s.%N; }

echo "fuzz.sh: $cases cases per batch, at least ${seconds}s per property, filter '${filter}'"
echo "started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) core(s), $(rustc --version)"
printf '%-78s %12s %9s %12s\n' property cases seconds cases/s
total_cases=0
total_start=$(now)
for bin in "${binaries[@]}"; do
    crate="$(basename "$bin" | sed 's/-[0-9a-f]*$//')"
    mapfile -t tests < <("$bin" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | grep -E '(^|::)props::' | grep -F -- "$filter" || true)
    for t in "${tests[@]}"; do
        start=$(now)
        batches=0
        while :; do
            if ! PROPTEST_CASES="$cases" "$bin" --exact "$t" --test-threads=1 -q >/tmp/fuzz-$$.log 2>&1; then
                cat /tmp/fuzz-$$.log
                rm -f /tmp/fuzz-$$.log
                echo "fuzz.sh: $crate $t FAILED after $((batches * cases)) passing cases" >&2
                exit 1
            fi
            batches=$((batches + 1))
            elapsed=$(awk -v a="$(now)" -v b="$start" 'BEGIN { printf "%.3f", a - b }')
            if awk -v e="$elapsed" -v s="$seconds" 'BEGIN { exit !(e >= s) }'; then break; fi
        done
        n=$((batches * cases))
        total_cases=$((total_cases + n))
        rate=$(awk -v n="$n" -v e="$elapsed" 'BEGIN { printf "%d", (e > 0 ? n / e : 0) }')
        printf '%-78s %12d %9.1f %12d\n' "$crate $t" "$n" "$elapsed" "$rate"
        if [[ -n "$out" ]]; then
            printf '%s %s\t%d\t%.1f\t%d\n' "$crate" "$t" "$n" "$elapsed" "$rate" >>"$out/results.tsv"
        fi
    done
done
rm -f /tmp/fuzz-$$.log
total_elapsed=$(awk -v a="$(now)" -v b="$total_start" 'BEGIN { printf "%.1f", a - b }')
printf '%-78s %12d %9.1f\n' "total" "$total_cases" "$total_elapsed"
echo "finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
