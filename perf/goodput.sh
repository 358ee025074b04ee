#!/usr/bin/env bash
# Sign-in goodput under a flood (issue 12): successful sign-ins per second against the raw
# Argon2 ceiling measured in the same run, on the embedded store and on PostgreSQL, the way users
# measure it. Per store:
#   * the ceiling: `hj bench ceiling` with the server's worker count, the server idle, for 10 s
#     (it sets the open-loop rates) and again before every point, which is compared with it;
#   * closed loop with wrk (perf/wrk-signin.lua) at 2 connections per core, 16 and 64;
#   * closed loop with `hj bench run --connections` at 16 and 64 (it reports the latency of
#     admitted sign-ins apart from the refusals);
#   * open loop with `hj bench run --rate` at 2x and 10x the ceiling;
#   * userinfo and refresh (closed loop, 4 connections each) while wrk floods sign-ins at 64.
# wrk and the bench run on the same cores as the server, as they do for a user on one box.
#
#   PERF_ADMIN_URL=postgresql://user:pass@127.0.0.1:5432/postgres bash perf/goodput.sh [OUT_DIR]
#
# PERF_ADMIN_URL must be allowed to CREATE DATABASE (the test services qualify:
# `bash scripts/services.sh start && source .hj-test/env && PERF_ADMIN_URL=$HJ_TEST_DATABASE_URL`).
# PERF_STORES (default "embedded postgres"), PERF_DURATION (20s per point), PERF_WARMUP (3s),
# PERF_CEILING (5s: the ceiling measured before each point, which that point is compared with).
# Needs `cargo build --release -p hj` and wrk (apt-get install wrk). Server: all cores (shards and
# hash workers), default Argon2id (m=19456 t=2 p=1), rate limits off, log level warn.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
OUT="${1:-$REPO/perf/results/goodput/$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${PERF_DURATION:-20s}"
WARMUP="${PERF_WARMUP:-3s}"
CEILING="${PERF_CEILING:-5s}"
read -r -a STORES <<<"${PERF_STORES:-embedded postgres}"
SECS="${DURATION%s}"
CORES="$(nproc)"
command -v wrk >/dev/null || { echo "goodput.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
[[ -x "$HJ" ]] || { echo "goodput.sh: $HJ is missing (cargo build --release -p hj)" >&2; exit 2; }
mkdir -p "$OUT"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"

# wrk closed loop: $1 store, $2 connections, $3 target. Writes $OUT/$1-wrk-c$2.txt.
wrk_point() {
    local store="$1" c="$2" target="$3" threads=$(( $2 < CORES ? $2 : CORES ))
    WRK_USERS=200 wrk -t"$threads" -c"$c" -d"$DURATION" --latency -s "$REPO/perf/wrk-signin.lua" \
        "$target" >"$OUT/$store-wrk-c$c.txt"
    grep WRK_RESULT "$OUT/$store-wrk-c$c.txt"
}

bench_run() { "$HJ" bench run --quiet --target "$1" --seed-file "$2" --duration "$DURATION" --warmup "$WARMUP" "${@:3}"; }

{
    echo "host: $CORES cores; $(date -u +%FT%TZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "binary: $HJ ($(git -C "$REPO" rev-parse --short HEAD)); $(wrk --version 2>&1 | head -1)"
    echo "points: $DURATION each after $WARMUP of warm-up (wrk: no warm-up)"
} >"$OUT/README.txt"
# The raw ceiling, measured with the server idle just before a point: $1 store, $2 point name.
# This VM's ceiling drifts by 10-15 % over minutes, so each point is compared with its own.
ceiling_before() {
    "$HJ" bench ceiling --target "$target" --duration "$CEILING" --json >"$OUT/$1-ceiling-$2.json"
}

for store in "${STORES[@]}"; do
    target="$(start_server "$store")"
    seed="$OUT/$store.seed.json"
    "$HJ" bench seed --target "$target" --users 200 --seed-file "$seed" >/dev/null
    "$HJ" bench ceiling --target "$target" --duration 10s --json >"$OUT/$store-ceiling.json"
    ceiling="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hashes_per_s"])' "$OUT/$store-ceiling.json")"
    echo "$store: ceiling $ceiling hashes/s" | tee -a "$OUT/README.txt"
    for c in $(( 2 * CORES )) 16 64; do
        ceiling_before "$store" "wrk-c$c"
        echo "$store wrk c$c: $(wrk_point "$store" "$c" "$target")" | tee -a "$OUT/README.txt"
    done
    for c in 16 64; do
        ceiling_before "$store" "bench-c$c"
        bench_run "$target" "$seed" --scenario signin --connections "$c" --out "$OUT/$store-bench-c$c" >/dev/null
    done
    for x in 2 10; do
        rate="$(python3 -c "print(round($ceiling * $x))")"
        ceiling_before "$store" "open-${x}x"
        bench_run "$target" "$seed" --scenario signin --rate "$rate" --max-connections 2000 \
            --out "$OUT/$store-open-${x}x" >/dev/null
    done
    # Cheap requests on the same instance while wrk floods sign-ins.
    for scenario in userinfo refresh; do
        WRK_USERS=200 wrk -t"$CORES" -c64 -d"$(( SECS + 8 ))s" -s "$REPO/perf/wrk-signin.lua" "$target" \
            >"$OUT/$store-flood-$scenario.wrk.txt" &
        flood=$!
        sleep 2
        bench_run "$target" "$seed" --scenario "$scenario" --connections 4 --threads 1 \
            --out "$OUT/$store-flood-$scenario" >/dev/null
        wait "$flood"
    done
    stop_server "$store"
done
python3 - "$OUT" "$CORES" "${STORES[@]}" <<'PY' | tee "$OUT/table.md"
import json, os, re, sys
out, cores, stores = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def load(name):
    p = os.path.join(out, name, "summary.json")
    return json.load(open(p)) if os.path.exists(p) else None
def ceiling_at(st, point):
    p = os.path.join(out, f"{st}-ceiling-{point}.json")
    return json.load(open(p))["hashes_per_s"] if os.path.exists(p) else None
print("| store | point | tool | ceiling before it | ok sign-ins/s | % of that ceiling | non-2xx/s | p99 admitted ms | p99 refused ms | p99 all ms |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for st in stores:
    first = json.load(open(os.path.join(out, f"{st}-ceiling.json")))["hashes_per_s"]
    print(f"| {st} | ceiling (sets the open-loop rates) | hj bench ceiling | | {first:.1f} | | | | | |")
    for c in (2 * cores, 16, 64):
        text = open(os.path.join(out, f"{st}-wrk-c{c}.txt")).read()
        m = re.search(r"WRK_RESULT ok=(\d+) refused=(\d+) seconds=([\d.]+) p99_ms=([\d.]+)", text)
        ok, refused, secs, p99 = int(m[1]), int(m[2]), float(m[3]), float(m[4])
        ceiling = ceiling_at(st, f"wrk-c{c}") or first
        print(f"| {st} | closed c{c} | wrk | {ceiling:.1f} | {ok/secs:.1f} | {100*ok/secs/ceiling:.0f} % | {refused/secs:.0f} | | | {p99:.0f} |")
    for name, point in ((f"{st}-bench-c16", "closed c16"), (f"{st}-bench-c64", "closed c64"),
                        (f"{st}-open-2x", "open 2x"), (f"{st}-open-10x", "open 10x")):
        s = load(name)
        if not s:
            continue
        ceiling = ceiling_at(st, name[len(st) + 1:]) or first
        non2xx = s["errors"]["non_2xx"] / s["duration_s"]
        ok_p99 = s.get("ok_latency_ms", {}).get("p99", 0)
        ref_p99 = s.get("refused_latency_ms", {}).get("p99", 0)
        print(f"| {st} | {point} | hj bench | {ceiling:.1f} | {s['ok_rate']:.1f} | {100*s['ok_rate']/ceiling:.0f} % | {non2xx:.0f} | {ok_p99:.0f} | {ref_p99:.1f} | {s['latency_ms']['p99']:.0f} |")
    for sc in ("userinfo", "refresh"):
        s = load(f"{st}-flood-{sc}")
        if s:
            print(f"| {st} | {sc} during a c64 flood | hj bench | | {s['ok_rate']:.0f} {sc}/s | | {s['errors']['non_2xx']/s['duration_s']:.0f} | {s.get('ok_latency_ms', {}).get('p99', 0):.0f} | | {s['latency_ms']['p99']:.0f} |")
PY
echo "results in $OUT"
