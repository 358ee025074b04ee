#!/usr/bin/env bash
# Raw Argon2 ceiling vs end-to-end sign-in rate on the embedded store, for two builds of `hj`
# (before and after a change), same machine, same run, the builds alternating.
#
#   HJ_BEFORE=/path/to/old/hj HJ_AFTER=/path/to/new/hj bash perf/signin-ceiling.sh [OUT_DIR]
#
# For each round, Argon2 setting (PERF_PARAMS, default "19456,2,1 65536,3,1") and build:
#   1. `hj bench ceiling` with the server's worker count (2 s warm, PERF_CEILING seconds);
#   2. a fresh server (embedded store, rate limiting off, those Argon2 settings, hash queue budget
#      PERF_BUDGET, default 2s), 100 users seeded;
#   3. `hj bench run --scenario signin` closed loop, PERF_CONNECTIONS connections (default
#      2 per hash worker, so a job is always queued for every worker), PERF_DURATION after 3 s
#      of warm-up, one load thread;
#   4. the server's peak RSS (VmHWM), transparent huge pages (AnonHugePages) and arena
#      metrics, then SIGTERM.
# Prints one markdown row per measurement (server ms/hash: the server's own mean Argon2 time per
# job during the run, from its metrics, to compare with the ceiling's); raw outputs stay in
# OUT_DIR.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${HJ_BEFORE:?set HJ_BEFORE to the old hj binary}"
: "${HJ_AFTER:?set HJ_AFTER to the new hj binary}"
OUT="${1:-$REPO/perf/results/signin-ceiling/$(date -u +%Y%m%dT%H%M%SZ)}"
ROUNDS="${PERF_ROUNDS:-2}"
PARAMS="${PERF_PARAMS:-19456,2,1 65536,3,1}"
DURATION="${PERF_DURATION:-15s}"
CEILING="${PERF_CEILING:-8s}"
WORKERS="${PERF_WORKERS:-$(nproc)}"
CONNS="${PERF_CONNECTIONS:-$((2 * WORKERS))}"
# Throughput is measured, not admission: a long queue budget keeps a slow moment (another
# process taking a core) from turning into fast 503s.
BUDGET="${PERF_BUDGET:-2s}"
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

measure() { # build-name binary m t p round
    local name="$1" hj="$2" m="$3" t="$4" p="$5" r="$6" dir port pid url ceiling hwm thp arena fresh
    dir="$OUT/r$r-m$m-t$t-$name"; mkdir -p "$dir"
    "$hj" bench ceiling --memory-kib "$m" --iterations "$t" --parallelism "$p" --workers "$WORKERS" \
        --duration "$CEILING" --json >"$dir/ceiling.json"
    ceiling="$(json "$dir/ceiling.json" 'round(d["hashes_per_s"], 1)')"
    port="$(free_port)"; url="http://127.0.0.1:$port"
    HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_DATA_DIR="$dir/data" HELLOJOHN_WORKERS="$WORKERS" \
        HELLOJOHN_ARGON2_MEMORY_KIB="$m" HELLOJOHN_ARGON2_ITERATIONS="$t" HELLOJOHN_ARGON2_PARALLELISM="$p" \
        HELLOJOHN_HASH_QUEUE_BUDGET="$BUDGET" HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn "$hj" serve >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
    "$hj" bench seed --target "$url" --users 100 --seed-file "$dir/seed.json" --quiet >/dev/null
    "$hj" bench run --target "$url" --scenario signin --connections "$CONNS" --duration "$DURATION" \
        --warmup 3s --threads 1 --seed-file "$dir/seed.json" --out "$dir/run" --quiet >"$dir/run.txt"
    hwm="$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")"
    thp="$(awk '/AnonHugePages/ {print int($2 / 1024)}' "/proc/$pid/smaps_rollup")"
    curl -sf "$url/metrics" >"$dir/metrics.txt" || true
    arena="$(awk '$1=="hellojohn_hash_pool_arena_bytes" {print int($2 / 1048576)}' "$dir/metrics.txt")"
    fresh="$(awk '$1=="hellojohn_hash_pool_arena_fresh_allocations_total" {print $2}' "$dir/metrics.txt")"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir/data"
    local ok p50 p99 errs srv
    srv="$(grep -o 'hashes at [0-9.]* ms' "$dir/run.txt" | awk '{print $3}')"
    ok="$(json "$dir/run/summary.json" 'round(d["ok_rate"], 1)')"
    p50="$(json "$dir/run/summary.json" 'round(d["latency_ms"]["p50"], 1)')"
    p99="$(json "$dir/run/summary.json" 'round(d["latency_ms"]["p99"], 1)')"
    errs="$(json "$dir/run/summary.json" 'd["errors"]["total"]')"
    echo "| $r | m=$m t=$t p=$p | $name | $ceiling | $ok | $(python3 -c "print(f'{100*$ok/$ceiling:.0f} %')") | ${srv:--} | $p50 | $p99 | $errs | $hwm | $thp | ${arena:--} | ${fresh:--} | $(cut -d' ' -f1 /proc/loadavg) |"
}

echo "host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); $WORKERS hash workers; closed loop $CONNS connections, $DURATION; $(date -u +%FT%TZ)"
echo
echo "| round | argon2id | build | ceiling hashes/s | sign-ins/s (2xx) | of ceiling | server ms/hash | p50 ms | p99 ms | errors | peak RSS MiB | huge pages MiB | arena MiB | fresh allocs | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
    for mtp in $PARAMS; do
        IFS=, read -r m t p <<<"$mtp"
        # Alternate which build goes first.
        if ((r % 2)); then order="before after"; else order="after before"; fi
        for name in $order; do
            if [[ $name == before ]]; then bin="$HJ_BEFORE"; else bin="$HJ_AFTER"; fi
            measure "$name" "$bin" "$m" "$t" "$p" "$r"
        done
    done
done
