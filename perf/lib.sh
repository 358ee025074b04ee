# Shared by the perf scripts that start servers on a store (stores.sh, goodput.sh). Source it after
# setting HJ (the hj binary) and OUT (the results folder).
#
# start_server STORE echoes the base URL of a new `hj serve` on STORE (`embedded`, `postgres`, or
# `pgbouncer`: PostgreSQL through PERF_PGBOUNCER_URL) and writes its pid to $OUT/STORE.pid and its log
# to $OUT/STORE.server.log. The PostgreSQL stores get a fresh database made through PERF_ADMIN_URL,
# migrated, with tenant `local` and client `local-app` (its name in $OUT/STORE.db). Rate limits are
# off, the log level warn. stop_server STORE stops it and drops that database: databases left
# behind would each be visited by autovacuum and load the next runs.

PERF_MASTER_KEY=404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
with_db() { python3 -c 'import sys,re; u,d=sys.argv[1],sys.argv[2]; h,_,q=u.partition("?"); print(re.sub(r"/[^/]*$","/"+d,h)+("?"+q if q else ""))' "$1" "$2"; }

start_server() {
    local store="$1" port dir env_db=() url db
    port="$(free_port)"; dir="$(mktemp -d)"
    if [[ "$store" != embedded ]]; then
        : "${PERF_ADMIN_URL:?set PERF_ADMIN_URL to a PostgreSQL URL that may CREATE DATABASE}"
        db="hj_perf_$(date +%s)_$store"
        psql -q "$PERF_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
        echo "$db" >"$OUT/$store.db"
        url="$(with_db "$PERF_ADMIN_URL" "$db")"
        [[ "$store" == pgbouncer ]] && url="$(with_db "$PERF_PGBOUNCER_URL" "$db")"
        env_db=(HELLOJOHN_DATABASE_URL="$url" HELLOJOHN_MASTER_KEY="$PERF_MASTER_KEY")
        env "${env_db[@]}" HELLOJOHN_LOG=error "$HJ" migrate >/dev/null
        env "${env_db[@]}" HELLOJOHN_LOG=error "$HJ" tenant create --slug local >/dev/null
        env "${env_db[@]}" HELLOJOHN_LOG=error "$HJ" client create --tenant local --client-id local-app >/dev/null
    fi
    # PERF_SERVER_ENV: extra settings for the server, space-separated KEY=VALUE (e.g. Redis).
    # shellcheck disable=SC2206
    local extra=(${PERF_SERVER_ENV:-})
    env "${env_db[@]}" "${extra[@]}" HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_DATA_DIR="$dir" \
        HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn "$HJ" serve >"$OUT/$store.server.log" 2>&1 &
    echo $! >"$OUT/$store.pid"
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
    echo "http://127.0.0.1:$port"
}

stop_server() {
    kill -TERM "$(cat "$OUT/$1.pid")"; wait "$(cat "$OUT/$1.pid")" 2>/dev/null || true
    rm -f "$OUT/$1.pid"
    if [[ -f "$OUT/$1.db" ]]; then
        psql -q "$PERF_ADMIN_URL" -c "DROP DATABASE IF EXISTS $(cat "$OUT/$1.db")" >/dev/null || true
        rm -f "$OUT/$1.db"
    fi
}
