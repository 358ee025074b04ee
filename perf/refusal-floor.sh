#!/usr/bin/env bash
# How much of the raw Argon2 ceiling is left when the cheapest possible server answers an
# open-loop flood of sign-ins with 503s on the same cores. Per round, alternating:
#
#   alone    `hj bench ceiling` with the machine otherwise idle (sets the flood's rate: PERF_X x it)
#   nginx    the ceiling again while `hj bench run --rate` sends sign-ins to nginx, which answers
#            every one with a static 503 (`limit_req` lets the bench's first sign-in through to
#            hj, so its preflight passes); nginx's and the generator's CPU per request from /proc
#   refuser  (only with HJ_REFUSER) the same against a build of hj whose HashPool::check refuses
#            every hashing request after the first HJ_FLOOR (see the results README for the patch)
#   hj       the real point: `hj bench run --rate` against `hj serve` (its sign-ins admitted up to
#            the ceiling, the rest refused), as perf/ab-open.sh does
#
#   bash perf/refusal-floor.sh OUTDIR
#
# PERF_ROUNDS (3), PERF_X (10), PERF_DURATION (14s), HJ (target/release/hj), HJ_REFUSER. Needs
# nginx on PATH. Embedded store only: no database is involved in a refusal.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
OUT="${1:?usage: refusal-floor.sh OUTDIR}"
mkdir -p "$OUT"
SECS="${PERF_DURATION:-14s}"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"

# Clock ticks of nginx's workers, or of one process's hj-shard-* threads.
nginx_ticks() {
    local t=0 p f
    for p in $(pgrep -f 'nginx: worker' || true); do
        read -ra f < <(cut -d')' -f2 "/proc/$p/stat"); t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
shard_ticks() {
    local t=0 p f
    for p in /proc/"$1"/task/*; do
        grep -q '^hj-shard' "$p/comm" || continue
        read -ra f < <(cut -d')' -f2 "$p/stat"); t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
ceiling() {
    "$HJ" bench ceiling --target "$1" --duration "$2" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["hashes_per_s"])'
}

hj_url="$(start_server embedded)"
hj_port="${hj_url##*:}"
"$HJ" bench seed --target "$hj_url" --users 200 --seed-file "$OUT/seed.json" >/dev/null 2>&1

ng_port="$(free_port)"; ng_dir="$(mktemp -d)"
cat >"$ng_dir/nginx.conf" <<NG
worker_processes 2;
pid $ng_dir/nginx.pid;
error_log $ng_dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $ng_dir/body; proxy_temp_path $ng_dir/proxy;
    fastcgi_temp_path $ng_dir/fastcgi; uwsgi_temp_path $ng_dir/uwsgi; scgi_temp_path $ng_dir/scgi;
    limit_req_zone \$host zone=one:1m rate=1r/m;
    server {
        listen 127.0.0.1:$ng_port;
        error_page 503 = @refuse;
        location @refuse {
            add_header Retry-After 1 always;
            default_type application/json;
            return 503 '{"code":"OVERLOADED","message":"the server is at capacity; retry later","detail":{"retry_after":1}}';
        }
        location /health { proxy_pass http://127.0.0.1:$hj_port; }
        location / { limit_req zone=one burst=1 nodelay; limit_req_status 503; proxy_pass http://127.0.0.1:$hj_port; }
    }
}
NG
nginx -c "$ng_dir/nginx.conf"
trap 'nginx -c "$ng_dir/nginx.conf" -s stop 2>/dev/null || true; stop_server embedded 2>/dev/null || true' EXIT

# flood NAME TARGET RATE TICKS_CMD...: the ceiling measured while the generator floods TARGET.
flood() {
    local name="$1" target="$2" rate="$3"; shift 3
    local t0 t1 busy
    t0="$("$@")"
    /usr/bin/time -f "%U %S" -o "$OUT/$name.time" "$HJ" bench run --quiet --target "$target" \
        --seed-file "$OUT/seed.json" --scenario signin --duration "$SECS" --warmup 1s --rate "$rate" \
        --max-connections 2000 --out "$OUT/$name" >/dev/null 2>"$OUT/$name.err" &
    local gen=$!
    sleep 3
    busy="$(ceiling "$hj_url" 8s)"
    wait "$gen"
    t1="$("$@")"
    echo "$busy $((t1 - t0))"
}

for round in $(seq "${PERF_ROUNDS:-3}"); do
    alone="$(ceiling "$hj_url" 8s)"
    rate="$(python3 -c "print(round($alone * ${PERF_X:-10}))")"
    read -r busy ticks < <(flood "r$round-nginx" "http://127.0.0.1:$ng_port" "$rate" nginx_ticks)
    echo "r$round nginx $alone $busy $ticks $rate" >>"$OUT/points.txt"
    if [[ -n "${HJ_REFUSER:-}" ]]; then
        r_port="$(free_port)"; r_dir="$(mktemp -d)"
        HJ_FLOOR=260 HELLOJOHN_LISTEN="127.0.0.1:$r_port" HELLOJOHN_DATA_DIR="$r_dir" \
            HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn "$HJ_REFUSER" serve >/dev/null 2>&1 &
        r_pid=$!
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$r_port/health" >/dev/null && break; sleep 0.1; done
        "$HJ" bench seed --target "http://127.0.0.1:$r_port" --users 200 --seed-file "$r_dir/seed.json" >/dev/null 2>&1
        cp "$OUT/seed.json" "$OUT/seed.main.json"; cp "$r_dir/seed.json" "$OUT/seed.json"
        read -r busy ticks < <(flood "r$round-refuser" "http://127.0.0.1:$r_port" "$rate" shard_ticks "$r_pid")
        mv "$OUT/seed.main.json" "$OUT/seed.json"
        kill "$r_pid"; wait "$r_pid" 2>/dev/null || true; rm -rf "$r_dir"
        echo "r$round refuser $alone $busy $ticks $rate" >>"$OUT/points.txt"
    fi
    pid="$(cat "$OUT/embedded.pid")"
    t0="$(shard_ticks "$pid")"
    "$HJ" bench run --quiet --target "$hj_url" --seed-file "$OUT/seed.json" --scenario signin \
        --duration "$SECS" --warmup 3s --rate "$rate" --max-connections 2000 --out "$OUT/r$round-hj" >/dev/null
    t1="$(shard_ticks "$pid")"
    echo "r$round hj $alone - $((t1 - t0)) $rate" >>"$OUT/points.txt"
done

python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
print("| round | who answers the flood | ceiling alone | flood /s | sign-ins (hashes) /s beside it | % of the ceiling | server CPU us per request | generator CPU us per request |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for line in open(os.path.join(out, "points.txt")):
    rnd, who, alone, busy, ticks, rate = line.split()
    alone = float(alone)
    s = json.load(open(os.path.join(out, f"{rnd}-{who}", "summary.json")))
    n = s["requests"] + s["warmup_requests"]
    server = int(ticks) * 1e4 / n
    if who == "hj":
        got, gen = s["ok_rate"], "-"
        what = "hj serve: admitted sign-ins, the rest refused"
    else:
        got = float(busy)
        u, sy = map(float, open(os.path.join(out, f"{rnd}-{who}.time")).read().split()[-2:])
        gen = "%.0f" % ((u + sy) * 1e6 / n)
        what = {"nginx": "nginx, static 503 (hashes: hj bench ceiling)",
                "refuser": "hj refusing all (hashes: hj bench ceiling)"}[who]
    print(f"| {rnd[1:]} | {what} | {alone:.1f} | {s['achieved_rate']:.0f} | {got:.1f} | {100 * got / alone:.0f} % | {server:.0f} | {gen} |")
PY
