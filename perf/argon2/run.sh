#!/usr/bin/env bash
# Compares Argon2id implementations on this host in one run: builds every variant of
# hellojohn-argon2-bench, checks that all of them give the same bytes, then measures them
# alternately (R rounds, every variant and implementation once per round and parameter set) and
# prints the median hashes/s of each.
#
#   perf/argon2/run.sh [ROUNDS] [SECONDS]        # default 5 rounds of 4 s per measurement
#
# Needs libsodium-dev, libargon2-dev and pkg-config (apt-get install libsodium-dev libargon2-dev
# pkg-config). Raw lines go to $OUT (default /tmp/hj-argon2-impls.tsv).
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-5}
SECS=${2:-4}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-/tmp/hj-argon2-impls.tsv}
PARAMS=${PARAMS:-"19456,2,1 65536,3,1 47104,1,1"}
T=${TARGET_ROOT:-/tmp/hj-argon2-target}

build() { # name, cargo flags...
    local name=$1; shift
    cargo build --release --quiet --target-dir "$T-$name" "$@"
    echo "$T-$name/release/hellojohn-argon2-bench"
}
declare -A BIN
BIN[default]=$(build default)
BIN[zeroize]=$(build zeroize --features zeroize)
BIN[native]=$(RUSTFLAGS="-C target-cpu=native" build native)
BIN[bundled]=$(build bundled --features bundled-sodium)

for v in default zeroize native bundled; do
    echo "== check $v ($("${BIN[$v]}" version))"
    "${BIN[$v]}" check | tail -1
done

echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$OUT"
for ((r = 0; r < ROUNDS; r++)); do
    for p in $PARAMS; do
        a=(--params "$p" --threads "$THREADS" --secs "$SECS")
        "${BIN[default]}" bench "${a[@]}" --label default --impls rustcrypto --thp both --pin both >> "$OUT"
        "${BIN[default]}" bench "${a[@]}" --label default --impls rustcrypto-fresh,sodium,ref >> "$OUT"
        "${BIN[zeroize]}" bench "${a[@]}" --label zeroize --impls rustcrypto >> "$OUT"
        "${BIN[native]}" bench "${a[@]}" --label target-cpu-native --impls rustcrypto >> "$OUT"
        "${BIN[bundled]}" bench "${a[@]}" --label sodium-1.0.22-bundled --impls sodium >> "$OUT"
    done
    echo "round $((r + 1))/$ROUNDS done, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" <<'PY2'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    label, impl, m, t, p, threads, thp, pin, rate, cpu_rate = f[:10]
    rows[(f"{m},{t},{p}", label, impl, thp, pin, threads)].append((float(rate), float(cpu_rate)))
print("| m,t,p | build | impl | THP | pinned | threads | hashes/s, wall (median) | hashes per CPU-s (median) | min–max per CPU-s | CPU ms/hash | runs |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
med = lambda v, i: statistics.median(x[i] for x in v)
for key in sorted(rows, key=lambda k: (k[0], -med(rows[k], 1))):
    v = rows[key]
    threads = int(key[5])
    c = med(v, 1)
    lo, hi = min(x[1] for x in v), max(x[1] for x in v)
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {threads} | {med(v, 0):.1f} | {c:.1f} | {lo:.1f}–{hi:.1f} | {1e3 * threads / c:.1f} | {len(v)} |")
PY2
