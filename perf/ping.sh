#!/usr/bin/env bash
# /ping throughput with 1 shard vs all cores, same load tool (wrk), same run.
#
#   bash perf/ping.sh [duration-seconds] [connections]
#
# Needs a release build (`cargo build --release -p hj`) and wrk (`apt-get install wrk`).
# Prints a markdown table; the recorded results are in perf/results/ping-shards.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
DURATION="${1:-10}"
CONNS="${2:-64}"
CORES="$(nproc)"
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
[[ -x "$HJ" ]] || { echo "$HJ missing: cargo build --release -p hj" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() {
    local shards="$1" port dir pid out rps p99
    port="$(free_port)"
    dir="$(mktemp -d)"
    HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_SHARDS="$shards" HELLOJOHN_DATA_DIR="$dir" \
        HELLOJOHN_LOG=warn "$HJ" serve >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done
    # Warm-up, then the measured run. wrk uses as many threads as there are cores.
    wrk -t "$CORES" -c "$CONNS" -d 2s "http://127.0.0.1:$port/ping" >/dev/null
    out="$(wrk -t "$CORES" -c "$CONNS" -d "${DURATION}s" --latency "http://127.0.0.1:$port/ping")"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir"
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
    echo "| $shards | $rps | $p99 |"
}

echo "host: $CORES cores ($(uname -m)); wrk -t $CORES -c $CONNS -d ${DURATION}s; $(date -u +%FT%TZ)"
echo
echo "| shards | requests/s | p99 |"
echo "|---|---|---|"
for round in 1 2; do
    run_one 1
    run_one "$CORES"
done
