#!/usr/bin/env bash
# A/B of hj binaries on the paths a refactoring must not slow down: sign-in (closed loop, 8
# connections), refresh and userinfo (closed loop, 32 connections each), on the embedded store
# and on PostgreSQL. Rounds alternate the binaries (the VM's drift hits both); the load comes
# from one `hj bench` (PERF_BENCH, default the last binary) for every server.
#
#   PERF_ADMIN_URL=postgresql://... bash perf/ab-paths.sh OUT_DIR BINARY...
#
# PERF_ADMIN_URL as for perf/stores.sh. PERF_STORES (default "embedded postgres"), PERF_ROUNDS
# (2), PERF_DURATION (10s per point, after 2 s of warm-up).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: ab-paths.sh OUT_DIR BINARY...}"; shift
[[ $# -ge 1 ]] || { echo "ab-paths.sh: name at least one binary" >&2; exit 2; }
BENCH="${PERF_BENCH:-${*: -1}}"
DURATION="${PERF_DURATION:-10s}"
read -r -a STORES <<<"${PERF_STORES:-embedded postgres}"
mkdir -p "$OUT"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"
{
    echo "host: $(nproc) cores; $(date -u +%FT%TZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binaries: $*; load from: $BENCH"
} >"$OUT/README.txt"
for round in $(seq "${PERF_ROUNDS:-2}"); do
    for store in "${STORES[@]}"; do
        for i in $(seq $#); do
            HJ="${!i}"
            target="$(start_server "$store")"
            seed="$OUT/seed.json"
            "$BENCH" bench seed --target "$target" --users 200 --seed-file "$seed" >/dev/null
            for point in "signin 8" "refresh 32" "userinfo 32"; do
                read -r scenario c <<<"$point"
                "$BENCH" bench run --quiet --target "$target" --seed-file "$seed" --scenario "$scenario" \
                    --connections "$c" --duration "$DURATION" --warmup 2s \
                    --out "$OUT/r$round-$store-b$i-$scenario" >/dev/null
            done
            stop_server "$store"
        done
    done
done
python3 - "$OUT" "${PERF_ROUNDS:-2}" "$#" "${STORES[@]}" <<'PY' | tee -a "$OUT/README.txt"
import json, os, sys
out, rounds, n, stores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
head = " | ".join(f"binary {i} ok/s (p99 ms)" for i in range(1, n + 1))
print(f"| store | path | round | {head} |")
print("|---|---|---|" + "---|" * n)
for st in stores:
    for sc in ("signin", "refresh", "userinfo"):
        for r in range(1, rounds + 1):
            cells = []
            for i in range(1, n + 1):
                s = json.load(open(os.path.join(out, f"r{r}-{st}-b{i}-{sc}", "summary.json")))
                cells.append(f"{s['ok_rate']:.0f} ({s['latency_ms']['p99']:.1f})")
            print(f"| {st} | {sc} | {r} | " + " | ".join(cells) + " |")
PY
