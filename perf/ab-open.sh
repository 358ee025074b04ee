#!/usr/bin/env bash
# A/B of hj binaries at one open-loop point: for each round and each binary (alternating, so the
# VM's drift hits both), a fresh server on STORE, the raw ceiling measured beside it, then
# `hj bench run --rate <PERF_X x ceiling>` for sign-ins. One line per point.
#
#   bash perf/ab-open.sh STORE BINARY... (STORE: embedded | postgres; postgres needs PERF_ADMIN_URL)
#
# PERF_X (10), PERF_ROUNDS (2), PERF_DURATION (15s), PERF_WARMUP (3s).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
store="${1:?usage: ab-open.sh STORE BINARY...}"; shift
[[ $# -ge 1 ]] || { echo "ab-open.sh: name at least one binary" >&2; exit 2; }
OUT="$(mktemp -d)"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"
for round in $(seq "${PERF_ROUNDS:-2}"); do
    for HJ in "$@"; do
        target="$(start_server "$store")"
        "$HJ" bench seed --target "$target" --users 200 --seed-file "$OUT/seed.json" >/dev/null 2>&1
        ceiling="$("$HJ" bench ceiling --target "$target" --duration 5s --json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["hashes_per_s"])')"
        rate="$(python3 -c "print(round($ceiling * ${PERF_X:-10}))")"
        "$HJ" bench run --quiet --target "$target" --seed-file "$OUT/seed.json" --scenario signin \
            --duration "${PERF_DURATION:-15s}" --warmup "${PERF_WARMUP:-3s}" --rate "$rate" \
            --max-connections 2000 --out "$OUT/run" >/dev/null
        python3 - "$ceiling" "$HJ" "$round" "$OUT/run/summary.json" <<'PY'
import json, sys
c = float(sys.argv[1]); d = json.load(open(sys.argv[4]))
print("round %s %s: ceiling %.1f ok %.1f/s = %.0f %%, admitted p99 %.0f ms, refused p99 %.1f ms, peak connections %d"
      % (sys.argv[3], sys.argv[2], c, d["ok_rate"], 100 * d["ok_rate"] / c,
         d["ok_latency_ms"]["p99"], d["refused_latency_ms"]["p99"], d["peak_connections"]), flush=True)
PY
        stop_server "$store"
    done
done
rm -rf "$OUT"
