#!/usr/bin/env bash
# Sign-in, refresh and userinfo on the embedded store vs PostgreSQL: same binary, same machine,
# same run, the stores alternating.
#
#   PERF_ADMIN_URL=postgresql://user:pass@127.0.0.1:5432/postgres bash perf/stores.sh [OUT_DIR]
#
# PERF_ADMIN_URL must be allowed to CREATE DATABASE (the test services qualify:
# `bash scripts/services.sh start && source .hj-test/env && PERF_ADMIN_URL=$HJ_TEST_DATABASE_URL`).
# Set PERF_PGBOUNCER_URL too to add a run through PgBouncer. Needs `cargo build --release -p hj`.
# Each run: 200 seeded users; signin closed loop with 8 connections; refresh and userinfo
# closed loop with 32 connections; 15 s each after 3 s of warm-up.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
OUT="${1:-$REPO/perf/results/stores/$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${PERF_DURATION:-15s}"
: "${PERF_ADMIN_URL:?set PERF_ADMIN_URL to a PostgreSQL URL that may CREATE DATABASE}"
mkdir -p "$OUT"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"

stores=(embedded postgres)
[[ -n "${PERF_PGBOUNCER_URL:-}" ]] && stores+=(pgbouncer)
{
    echo "host: $(nproc) cores; $(date -u +%FT%TZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binary: $HJ ($(git -C "$REPO" rev-parse --short HEAD))"
} >"$OUT/README.txt"
for store in "${stores[@]}"; do
    target="$(start_server "$store")"
    seed="$OUT/$store.seed.json"
    "$HJ" bench seed --target "$target" --users 200 --seed-file "$seed" >/dev/null
    "$HJ" bench run --target "$target" --seed-file "$seed" --scenario signin --connections 8 \
        --duration "$DURATION" --warmup 3s --out "$OUT/$store-signin" | tee -a "$OUT/README.txt"
    "$HJ" bench run --target "$target" --seed-file "$seed" --scenario refresh --connections 32 \
        --duration "$DURATION" --warmup 3s --out "$OUT/$store-refresh" | tee -a "$OUT/README.txt"
    "$HJ" bench run --target "$target" --seed-file "$seed" --scenario userinfo --connections 32 \
        --duration "$DURATION" --warmup 3s --out "$OUT/$store-userinfo" | tee -a "$OUT/README.txt"
    stop_server "$store"
done
python3 - "$OUT" "${stores[@]}" <<'PY' | tee "$OUT/table.md"
import json, sys, os
out, stores = sys.argv[1], sys.argv[2:]
print("| store | scenario | achieved/s | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|")
for st in stores:
    for sc in ("signin", "refresh", "userinfo"):
        p = os.path.join(out, f"{st}-{sc}", "summary.json")
        s = json.load(open(p))
        lat = s["latency_ms"]
        print(f"| {st} | {sc} | {s['achieved_rate']:.0f} | {lat['p50']:.1f} | {lat['p99']:.1f} | {s.get('error_rate', 0):.2%} |")
PY
