#!/usr/bin/env bash
# Where the CPU goes during one sign-in load point: the server's hashing threads, its event loops
# (hj-shard-*), its other threads (SQLite, webhooks), PostgreSQL (every postgres process, with
# the autovacuum workers that exited meanwhile), the load generator and the rest, as shares of the
# machine and per request, from /proc before and after. What the hashing threads do not get is
# what keeps sign-ins below the raw Argon2 ceiling (perf/goodput.sh).
#
#   bash perf/cpu-split.sh STORE LOAD [SECONDS]
#
# STORE: embedded, postgres or pgbouncer (perf/lib.sh; the PostgreSQL ones need PERF_ADMIN_URL).
# LOAD: wrkN (wrk closed loop, N connections, perf/wrk-signin.lua), benchN (`hj bench run
# --connections N`, closed loop) or openR (`hj bench run --rate R`, open loop). SECONDS: 15 by default. HELLOJOHN_* settings in the environment reach the
# server. Linux only. Needs `cargo build --release -p hj` and wrk.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
STORE="${1:?store}"
LOAD="${2:?load: wrkN, benchN or openR}"
SECS="${3:-15}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"

target="$(start_server "$STORE")"
pid="$(cat "$OUT/$STORE.pid")"
"$HJ" bench seed --target "$target" --users 200 --seed-file "$OUT/seed.json" >/dev/null 2>&1

# Clock ticks per group: the server's threads by name, every postgres process, the whole machine.
snapshot() {
    python3 - "$pid" <<'PY'
import glob, os, sys
pid = sys.argv[1]
g = {"hash": 0, "shard": 0, "other": 0, "postgres": 0}
for t in glob.glob(f"/proc/{pid}/task/*"):
    try:
        name = open(t + "/comm").read().strip()
        f = open(t + "/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    k = "hash" if name.startswith("hj-hash") else "shard" if name.startswith("hj-shard") else "other"
    g[k] += int(f[11]) + int(f[12])
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        if open(f"/proc/{p}/comm").read().strip() == "postgres":
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            g["postgres"] += sum(int(x) for x in f[11:15])  # with exited children
    except OSError:
        pass
cpu = open("/proc/stat").readline().split()[1:]
g["total"] = sum(map(int, cpu[:8]))
g["idle"] = int(cpu[3]) + int(cpu[4])
print(" ".join(f"{k}={v}" for k, v in g.items()))
PY
}

before="$(snapshot)"
case "$LOAD" in
wrk*)
    WRK_USERS=200 wrk -t"$(nproc)" -c"${LOAD#wrk}" -d"${SECS}s" -s "$REPO/perf/wrk-signin.lua" \
        "$target" >"$OUT/wrk.txt"
    read -r ok requests < <(python3 -c "import re,sys; m=re.search(r'ok=(\d+) refused=(\d+)', open(sys.argv[1]).read()); print(m[1], int(m[1])+int(m[2]))" "$OUT/wrk.txt")
    ;;
bench*)
    "$HJ" bench run --quiet --target "$target" --seed-file "$OUT/seed.json" --duration "${SECS}s" \
        --warmup 0s --scenario signin --connections "${LOAD#bench}" --out "$OUT/b" >/dev/null
    read -r ok requests < <(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['status_counts'].get('200', 0), s['requests'])" "$OUT/b/summary.json")
    ;;
open*)
    "$HJ" bench run --quiet --target "$target" --seed-file "$OUT/seed.json" --duration "${SECS}s" \
        --warmup 0s --scenario signin --rate "${LOAD#open}" --max-connections 2000 --out "$OUT/b" >/dev/null
    read -r ok requests < <(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['status_counts'].get('200', 0), s['requests'])" "$OUT/b/summary.json")
    ;;
*) echo "cpu-split.sh: LOAD is wrkN, benchN or openR" >&2; exit 2 ;;
esac
after="$(snapshot)"
stop_server "$STORE"

python3 - "$before" "$after" "$ok" "$requests" "$SECS" "$STORE" "$LOAD" <<'PY'
import sys
a = dict(x.split("=") for x in sys.argv[1].split())
b = dict(x.split("=") for x in sys.argv[2].split())
d = {k: int(b[k]) - int(a[k]) for k in a}
ok, requests, secs = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
total = d["total"]
d["load generator and the rest"] = total - sum(d[k] for k in ("hash", "shard", "other", "postgres", "idle"))
tick_us = 1e6 / 100  # USER_HZ
print(f"{sys.argv[6]} {sys.argv[7]}: {ok / secs:.1f} sign-ins/s, {requests / secs:.0f} requests/s")
print("| CPU of | share of the machine | ms per successful sign-in | us per request |")
print("|---|---:|---:|---:|")
for k in ("hash", "shard", "other", "postgres", "idle", "load generator and the rest"):
    v = d[k]
    print(f"| {k} | {100 * v / total:.1f} % | {v * tick_us / 1000 / max(ok, 1):.2f} | {v * tick_us / max(requests, 1):.0f} |")
PY
