#!/usr/bin/env bash
# Resident memory of an idle `hj serve` on an empty embedded store: VmRSS 3 s after start and
# again after the hashing threads' idle release (HELLOJOHN_HASH_ARENA_IDLE_RELEASE, default
# 30s; the second reading is taken 5 s after it).
#
#   bash perf/idle-memory.sh [HJ_BINARY...]        # default target/release/hj
#
# Each binary runs with its defaults (workers = this host's cores) on a free loopback port.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE="${HELLOJOHN_HASH_ARENA_IDLE_RELEASE:-30s}"
WAIT="$(python3 -c "import re,sys; v=sys.argv[1]; m=re.fullmatch(r'(\d+)(ms|s|m)', v); print(int(m[1]) * {'ms': 0.001, 's': 1, 'm': 60}[m[2]] + 5)" "$RELEASE")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
[[ $# -gt 0 ]] || set -- "$REPO/target/release/hj"
echo "host: $(nproc) CPUs; idle release $RELEASE; $(date -u +%FT%TZ)"
echo
echo "| binary | RSS at 3 s MiB | RSS after the idle release MiB |"
echo "|---|---|---|"
for hj in "$@"; do
    dir="$(mktemp -d)"
    # The setting is inherited when exported, not passed: builds before it refuse unknown keys.
    HELLOJOHN_LISTEN="127.0.0.1:$(free_port)" HELLOJOHN_DATA_DIR="$dir" HELLOJOHN_LOG=warn \
        "$hj" serve >"$dir/server.log" 2>&1 &
    pid=$!
    sleep 3
    first="$(rss "$pid")"
    sleep "$((${WAIT%.*} - 3))"
    echo "| $hj | $first | $(rss "$pid") |"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir"
done
