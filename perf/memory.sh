#!/usr/bin/env bash
# Memory and throughput of `hj serve` with N shards and N hash workers, for one or more builds,
# the builds alternating, on the embedded store:
#   idle RSS once the hash workers have released their arenas (HELLOJOHN_HASH_ARENA_IDLE_RELEASE
#   set to 3s here, read 8 s after start); peak RSS (VmHWM) after 8 s of sign-in load, closed loop
#   2N connections; then userinfo (bearer) 5 s, closed loop 64 connections.
#
#   PERF_SHARDS=16 PERF_ROUNDS=2 bash perf/memory.sh HJ_BINARY...
set -euo pipefail
N="${PERF_SHARDS:-$(nproc)}"
ROUNDS="${PERF_ROUNDS:-2}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "host: $(nproc) CPUs; $N shards and hash workers; $(date -u +%FT%TZ)"
echo
echo "| round | binary | idle RSS MiB | peak RSS under sign-in MiB | sign-ins/s | userinfo/s |"
echo "|---|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
    for hj in "$@"; do
        d="$(mktemp -d)"; port="$(free_port)"; url="http://127.0.0.1:$port"
        HELLOJOHN_DATA_DIR="$d" HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_SHARDS="$N" \
            HELLOJOHN_WORKERS="$N" HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_HASH_QUEUE_BUDGET=2s \
            HELLOJOHN_HASH_ARENA_IDLE_RELEASE=3s HELLOJOHN_LOG=warn "$hj" serve >"$d/server.log" 2>&1 &
        pid=$!
        sleep 8
        idle="$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")"
        "$hj" bench seed --target "$url" --users 64 --seed-file "$d/seed.json" --quiet >/dev/null
        "$hj" bench run --target "$url" --scenario signin --connections $((2 * N)) --duration 8s \
            --warmup 2s --threads 1 --seed-file "$d/seed.json" --out "$d/signin" --quiet >"$d/signin.txt"
        hwm="$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")"
        "$hj" bench run --target "$url" --scenario userinfo --connections 64 --duration 5s \
            --warmup 1s --threads 1 --seed-file "$d/seed.json" --out "$d/userinfo" --quiet >"$d/userinfo.txt"
        rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["ok_rate"]))' "$1"; }
        echo "| $r | $hj | $idle | $hwm | $(rate "$d/signin/summary.json") | $(rate "$d/userinfo/summary.json") |"
        kill -TERM "$pid"; wait "$pid" || true
        rm -rf "$d"
    done
done
