#!/usr/bin/env bash
# Profiles `hj serve` while `hj bench` drives one scenario against it.
#
#   bash perf/profile.sh SCENARIO [SECONDS] [OUT_DIR]     e.g. bash perf/profile.sh userinfo 10
#
# Uses `perf record -g` when the kernel lets perf count cycles here, else valgrind's callgrind
# (instruction counts: slow, but repeatable on a shared machine). Writes the raw profile and a
# text report (top functions) to OUT_DIR (default perf/results/profile-SCENARIO-<time>).
# Needs `cargo build --release -p hj` (the release profile keeps line tables for symbols).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
SCENARIO="${1:?scenario: signin|register|refresh|userinfo|session|mixed}"
SECONDS_RUN="${2:-10}"
OUT="${3:-$REPO/perf/results/profile-$SCENARIO-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
data="$(mktemp -d)"
export HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_DATA_DIR="$data" HELLOJOHN_LOG=warn \
    HELLOJOHN_RATE_LIMIT_ENABLED=false

if perf stat -e cycles true >/dev/null 2>&1; then
    tool=perf
    perf record -g -o "$OUT/perf.data" -- "$HJ" serve >"$OUT/server.log" 2>&1 &
else
    tool=callgrind
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$HJ" serve >"$OUT/server.log" 2>&1 &
fi
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
target="http://127.0.0.1:$port"
"$HJ" bench seed --target "$target" --users 50 --seed-file "$OUT/seed.json" >/dev/null
"$HJ" bench run --target "$target" --seed-file "$OUT/seed.json" --scenario "$SCENARIO" \
    --connections 16 --duration "${SECONDS_RUN}s" --warmup 1s --out "$OUT/bench" | tee "$OUT/bench.txt"
# SIGINT reaches the profiled process through perf/valgrind; both then write their files.
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [[ $tool == perf ]]; then
    perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 1 2>/dev/null | head -120 >"$OUT/report.txt"
else
    callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | head -80 >"$OUT/report.txt"
fi
rm -rf "$data"
echo "profile ($tool) in $OUT; top functions in $OUT/report.txt"
