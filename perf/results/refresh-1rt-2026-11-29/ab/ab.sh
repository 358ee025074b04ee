#!/usr/bin/env bash
# Same binary, same run: refresh with the client known to the shard's cache (one round trip) vs
# with a second tenant holding a client of the same name (the flow then reads the token first:
# the three-call path of before).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"; HJ="${HJ:-$REPO/target/release/hj}"
OUT="${OUT:-$(mktemp -d)}"; mkdir -p "$OUT"
source $REPO/perf/lib.sh
for round in 1 2; do
for store in postgres pgbouncer; do
  for variant in one_trip by_token; do
    target="$(start_server "$store")"
    if [[ $variant == by_token ]]; then
      url="$(with_db "$PERF_ADMIN_URL" "$(cat $OUT/$store.db)")"
      env HELLOJOHN_DATABASE_URL="$url" HELLOJOHN_MASTER_KEY="$PERF_MASTER_KEY" HELLOJOHN_LOG=error "$HJ" tenant create --slug other >/dev/null
      env HELLOJOHN_DATABASE_URL="$url" HELLOJOHN_MASTER_KEY="$PERF_MASTER_KEY" HELLOJOHN_LOG=error "$HJ" client create --tenant other --client-id local-app >/dev/null
    fi
    "$HJ" bench seed --target "$target" --users 200 --seed-file "$OUT/seed.json" >/dev/null
    "$HJ" bench run --target "$target" --seed-file "$OUT/seed.json" --scenario refresh --connections 32 \
       --duration 15s --warmup 3s --out "$OUT/$store-$variant-$round" 2>/dev/null | grep -E "^refresh" | cut -c1-200 | sed "s/^/$round $store $variant: /"
    stop_server "$store"
  done
done
done
