#!/usr/bin/env bash
# The paths without a password hash, embedded store vs PostgreSQL (direct and through PgBouncer),
# same binary, same machine, same run: GET /userinfo and GET /v2/me (Bearer) at 16 and 64
# connections, refresh at 16 and 64, and session userinfo (cookie) at 16; for each run, the
# store calls it made per request, by method (hellojohn_db_calls_total, PostgreSQL only).
#
#   PERF_ADMIN_URL=... PERF_PGBOUNCER_URL=... [PERF_REDIS_URL=redis://...] \
#     bash perf/pg-paths.sh [OUT_DIR]
#
# With PERF_REDIS_URL every server uses that Redis (the session cache, the shared limiter; rate
# limits stay off). The test services qualify: `bash scripts/services.sh start && source
# .hj-test/env && PERF_ADMIN_URL=$HJ_TEST_DATABASE_URL PERF_PGBOUNCER_URL=$HJ_TEST_PGBOUNCER_URL
# PERF_REDIS_URL=$HJ_TEST_REDIS_URL`. Needs `cargo build --release -p hj` (or HJ=path/to/hj).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
OUT="${1:-$REPO/perf/results/pg-paths/$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${PERF_DURATION:-15s}"
USERS="${PERF_USERS:-100}"
: "${PERF_ADMIN_URL:?set PERF_ADMIN_URL to a PostgreSQL URL that may CREATE DATABASE}"
mkdir -p "$OUT"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"
if [[ -n "${PERF_REDIS_URL:-}" ]]; then
    export PERF_SERVER_ENV="HELLOJOHN_REDIS_URL=$PERF_REDIS_URL"
fi

stores=(embedded postgres)
[[ -n "${PERF_PGBOUNCER_URL:-}" ]] && stores+=(pgbouncer)
runs=("userinfo 16" "userinfo 64" "me 16" "me 64" "refresh 16" "refresh 64" "session 16")
{
    echo "host: $(nproc) cores; $(date -u +%FT%TZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binary: $HJ"
    echo "users: $USERS; each run ${DURATION} after 3s of warm-up; redis: ${PERF_REDIS_URL:+yes}"
} >"$OUT/README.txt"
calls() { curl -s "$1/metrics" | grep '^hellojohn_db_calls_total' || true; }
for store in "${stores[@]}"; do
    target="$(start_server "$store")"
    seed="$OUT/$store.seed.json"
    "$HJ" bench seed --target "$target" --users "$USERS" --seed-file "$seed" >/dev/null
    for run in "${runs[@]}"; do
        read -r scenario conns <<<"$run"
        name="$store-$scenario-c$conns"
        calls "$target" >"$OUT/$name.calls-before"
        "$HJ" bench run --target "$target" --seed-file "$seed" --scenario "$scenario" \
            --connections "$conns" --duration "$DURATION" --warmup 3s --out "$OUT/$name" \
            | tee -a "$OUT/README.txt"
        calls "$target" >"$OUT/$name.calls-after"
    done
    stop_server "$store"
done
python3 - "$OUT" "${stores[@]}" -- "${runs[@]}" <<'PY' | tee "$OUT/table.md"
import json, os, sys
args = sys.argv[1:]
out, rest = args[0], args[1:]
sep = rest.index("--")
stores, runs = rest[:sep], [r.split() for r in rest[sep + 1:]]

def calls(path):
    d = {}
    for line in open(path):
        name, value = line.rsplit(" ", 1)
        d[name.split('"')[1]] = float(value)
    return d

print("| store | scenario | conns | achieved/s | p50 ms | p99 ms | errors | store calls per request |")
print("|---|---|---|---|---|---|---|---|")
for st in stores:
    for sc, c in runs:
        name = f"{st}-{sc}-c{c}"
        s = json.load(open(os.path.join(out, name, "summary.json")))
        lat = s["latency_ms"]
        before, after = calls(os.path.join(out, name + ".calls-before")), calls(os.path.join(out, name + ".calls-after"))
        reqs = max(s.get("requests", 0) + s.get("warmup_requests", 0), 1)
        per = {m: (after[m] - before.get(m, 0)) / reqs for m in after if after[m] - before.get(m, 0) > 0}
        per_s = ", ".join(f"{m} {v:.3f}" for m, v in sorted(per.items(), key=lambda kv: -kv[1])) or "-"
        print(f"| {st} | {sc} | {c} | {s['achieved_rate']:.0f} | {lat['p50']:.1f} | {lat['p99']:.1f} | {s.get('error_rate', 0):.2%} | {per_s} |")
PY
