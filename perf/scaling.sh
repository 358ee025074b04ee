#!/usr/bin/env bash
# How sign-in throughput scales with cores, on the embedded store: for each core count N,
# the raw Argon2 ceiling of N threads and the end-to-end sign-in rate of a server confined to
# N cores (HELLOJOHN_SHARDS=N, HELLOJOHN_WORKERS=N, `taskset` to CPUs 0..N-1).
#
#   bash perf/scaling.sh [OUT_DIR]          # HJ=path/to/hj (default target/release/hj)
#
# For each N in PERF_CORES (default "1 2 4 8 16", capped at the host's CPUs):
#   1. `hj bench ceiling --workers N` on CPUs 0..N-1 (PERF_CEILING, default 5s);
#   2. a fresh server on CPUs 0..N-1 (embedded store, rate limiting off, default Argon2
#      parameters or PERF_ARGON2="m,t,p", hash queue budget PERF_BUDGET, default 2s), 200 users
#      seeded;
#   3. `hj bench run --scenario signin` closed loop with 2N connections (a job always queued for
#      every worker), PERF_DURATION (default 10s) after 3 s of warm-up, the load generator on
#      the CPUs the server does not use (on all of them when it uses every CPU);
#   4. the server's peak RSS, then SIGTERM.
# Prints one markdown row per core count; raw outputs stay in OUT_DIR. Then, unless
# PERF_CAPACITY=0, `hj bench capacity` (open loop, p99 < 500 ms, errors < 1 %) against a server
# on every CPU, the load generator sharing them, and its verdict line.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
OUT="${1:-$REPO/perf/results/scaling/$(date -u +%Y%m%dT%H%M%SZ)}"
TOTAL="$(nproc)"
CORES="${PERF_CORES:-1 2 4 8 16}"
DURATION="${PERF_DURATION:-10s}"
CEILING="${PERF_CEILING:-5s}"
BUDGET="${PERF_BUDGET:-2s}"
IFS=, read -r M T P <<<"${PERF_ARGON2:-19456,2,1}"
mkdir -p "$OUT"
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_ok() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null; }
http_get() { python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

measure() { # cores
    local n="$1" dir port pid url ceiling hwm srv ok p50 p99 errs cpus load conns base
    dir="$OUT/n$n"; mkdir -p "$dir"
    cpus="0-$((n - 1))"
    if ((n < TOTAL)); then load="$n-$((TOTAL - 1))"; else load="0-$((TOTAL - 1))"; fi
    conns=$((2 * n))
    taskset -c "$cpus" "$HJ" bench ceiling --memory-kib "$M" --iterations "$T" --parallelism "$P" \
        --workers "$n" --duration "$CEILING" --json >"$dir/ceiling.json"
    ceiling="$(json "$dir/ceiling.json" 'round(d["hashes_per_s"], 1)')"
    port="$(free_port)"; url="http://127.0.0.1:$port"
    HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_DATA_DIR="$dir/data" HELLOJOHN_SHARDS="$n" \
        HELLOJOHN_WORKERS="$n" HELLOJOHN_ARGON2_MEMORY_KIB="$M" HELLOJOHN_ARGON2_ITERATIONS="$T" \
        HELLOJOHN_ARGON2_PARALLELISM="$P" HELLOJOHN_HASH_QUEUE_BUDGET="$BUDGET" \
        HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn \
        taskset -c "$cpus" "$HJ" serve >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do http_ok "$url/health" && break; sleep 0.1; done
    taskset -c "$load" "$HJ" bench seed --target "$url" --users 200 --seed-file "$dir/seed.json" \
        --quiet >/dev/null
    base="$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")"
    taskset -c "$load" "$HJ" bench run --target "$url" --scenario signin --connections "$conns" \
        --duration "$DURATION" --warmup 3s --threads 1 --seed-file "$dir/seed.json" \
        --out "$dir/run" --quiet >"$dir/run.txt"
    hwm="$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")"
    http_get "$url/metrics" >"$dir/metrics.txt" || true
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir/data"
    srv="$(grep -o 'hashes at [0-9.]* ms' "$dir/run.txt" | awk '{print $3}' || true)"
    ok="$(json "$dir/run/summary.json" 'round(d["ok_rate"], 1)')"
    p50="$(json "$dir/run/summary.json" 'round(d["latency_ms"]["p50"], 1)')"
    p99="$(json "$dir/run/summary.json" 'round(d["latency_ms"]["p99"], 1)')"
    errs="$(json "$dir/run/summary.json" 'd["errors"]["total"]')"
    echo "| $n | $ceiling | $(python3 -c "print(round($ceiling/$n, 1))") | $ok | $(python3 -c "print(round($ok/$n, 1))") | $(python3 -c "print(f'{100*$ok/$ceiling:.0f} %')") | ${srv:--} | $p50 | $p99 | $errs | $base | $hwm |"
}

echo "host: $TOTAL CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); argon2id m=$M t=$T p=$P; closed loop 2N connections, $DURATION; $(date -u +%FT%TZ)"
echo
echo "| cores N | ceiling hashes/s | per core | sign-ins/s (2xx) | per core | of ceiling | server ms/hash | p50 ms | p99 ms | errors | RSS before MiB | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in $CORES; do
    ((n <= TOTAL)) || continue
    measure "$n"
done

if [[ "${PERF_CAPACITY:-1}" != 0 ]]; then
    dir="$OUT/capacity"; mkdir -p "$dir"
    port="$(free_port)"; url="http://127.0.0.1:$port"
    HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_DATA_DIR="$dir/data" \
        HELLOJOHN_ARGON2_MEMORY_KIB="$M" HELLOJOHN_ARGON2_ITERATIONS="$T" \
        HELLOJOHN_ARGON2_PARALLELISM="$P" HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn \
        "$HJ" serve >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do http_ok "$url/health" && break; sleep 0.1; done
    "$HJ" bench seed --target "$url" --users 400 --seed-file "$dir/seed.json" --quiet >/dev/null
    echo
    echo "capacity, server on all $TOTAL CPUs (default settings but rate limiting off):"
    "$HJ" bench capacity --target "$url" --scenario signin --seed-file "$dir/seed.json" \
        --step-duration "${PERF_STEP:-8s}" --max-steps "${PERF_MAX_STEPS:-10}" \
        --memory-kib "$M" --iterations "$T" --parallelism "$P" --out "$dir/out" \
        2>"$dir/steps.txt" | tee "$dir/verdict.txt"
    hwm="$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir/data"
    echo "server peak RSS: $hwm MiB"
    echo
    echo '```'
    cat "$dir/steps.txt"
    echo '```'
fi
