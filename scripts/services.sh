#!/usr/bin/env bash
# Test services for HelloJohn: PostgreSQL (with TLS), PgBouncer, Redis and a
# 3-node Redis Cluster, all on free loopback ports under one state directory.
#
#   scripts/services.sh start             fresh services; writes $STATE/env
#   scripts/services.sh stop              stops whatever runs from $STATE (idempotent)
#   scripts/services.sh env               prints $STATE/env (export lines)
#   scripts/services.sh restart-postgres  for failure tests (reads $STATE/env)
#   scripts/services.sh restart-pgbouncer  the same for PgBouncer (scripts/cluster.py)
#   scripts/services.sh stop-postgres / start-postgres   a longer database outage
#   scripts/services.sh stop-redis        stops the standalone Redis (same port/state kept)
#   scripts/services.sh start-redis       starts it again on the same port
#   scripts/services.sh install-deps      apt-get installs missing packages (root only)
#
# STATE is $HJ_TEST_DIR, default <repo>/.hj-test (git-ignored).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/services.sh"
STATE="${HJ_TEST_DIR:-$REPO/.hj-test}"
WAIT_SECS="${HJ_TEST_WAIT_SECS:-60}" # bound on every readiness wait

PG_USER=hellojohn PG_PASSWORD=hellojohn PG_DB=hellojohn
PACKAGES=(postgresql postgresql-client redis-server redis-tools pgbouncer openssl python3 util-linux
    nginx prometheus yamllint python3-yaml chromium fonts-dejavu-core python3-aiosmtpd)

log() { echo "services.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Postgres and PgBouncer refuse to run as root, so root runs them as `postgres`;
# a developer running as themselves runs them as themselves.
if [[ $EUID -eq 0 ]]; then RUN_AS=postgres; else RUN_AS="$(id -un)"; fi
as_pg() {
    # cd / because the caller's cwd may be unreadable for the postgres user.
    if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# ---------------------------------------------------------------- packages

pg_bindir() {
    # Debian installs each major version under /usr/lib/postgresql/<ver>/bin; take the newest.
    if [[ -n "${HJ_TEST_PG_BINDIR:-}" ]]; then echo "$HJ_TEST_PG_BINDIR"; return; fi
    local d best=""
    while read -r d; do
        [[ -x "$d/initdb" ]] && best="$d"
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V) # version order: 9.6 < 15
    [[ -n "$best" ]] && echo "$best"
}

missing_packages() {
    local missing=()
    [[ -n "$(pg_bindir)" ]] || missing+=(postgresql)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    [[ -x /usr/sbin/pgbouncer ]] || command -v pgbouncer >/dev/null || missing+=(pgbouncer)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v python3 >/dev/null || missing+=(python3)
    command -v runuser >/dev/null || missing+=(util-linux)
    # The deployment kit's checks (scripts/check-deploy.sh) and the nginx cluster.
    [[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v yamllint >/dev/null || missing+=(yamllint)
    /usr/bin/python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
    # The SMTP sink of the engine's mail tests (scripts/smtp_sink.py).
    /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
    # The conformance suite's headless browser test of the hosted sign-in page
    # (scripts/conformance.sh), and a font for its text.
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    [[ -d /usr/share/fonts/truetype/dejavu ]] || missing+=(fonts-dejavu-core)
    echo "${missing[*]}"
}

install_deps() {
    local missing
    missing="$(missing_packages)"
    [[ -z "$missing" ]] && return 0
    if [[ $EUID -ne 0 ]]; then
        die "missing packages: $missing; install with: sudo apt-get install -y ${PACKAGES[*]}"
    fi
    log "installing missing packages: $missing"
    # Only refresh the package lists when we actually have to install something.
    apt-get update -qq
    # Packages that ship a daemon (nginx, prometheus, ...) must not start it: the tests start
    # what they need on free ports. policy-rc.d answering 101 is Debian's switch for that.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    # --no-upgrade: never touch packages that are already installed.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-upgrade \
        "${PACKAGES[@]}" >/dev/null
    [[ $own_policy == 1 ]] && rm -f "$policy"
    missing="$(missing_packages)"
    [[ -z "$missing" ]] || die "still missing after apt-get install: $missing"
}

# ------------------------------------------------------------------ helpers

# N distinct free loopback ports: bind them all to port 0 at once (so they differ),
# then release them for the services. Never fixed ports: tests may run side by side.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_until <what> <logfile> <command...>: retry the command for WAIT_SECS, then
# print the service's log and fail.
wait_until() {
    local what="$1" logfile="$2"; shift 2
    local deadline=$((SECONDS + WAIT_SECS))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$what not ready after ${WAIT_SECS}s; last lines of $logfile:"
            tail -n 60 "$logfile" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
}

# live_pid <pidfile> <command name>: the pid if that process still runs. The name check
# keeps a stale pidfile (e.g. after a reboot) from making us kill an unrelated process.
live_pid() {
    local pid comm
    [[ -s "$1" ]] || return 1
    pid="$(head -n 1 "$1" | tr -dc 0-9)"
    [[ -n "$pid" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$2" ]] && echo "$pid"
}

# Wait for a pid to exit (bounded), then SIGKILL it as a last resort.
wait_gone() {
    local pid="$1" i
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    log "pid $pid did not exit; killing it"
    kill -9 "$pid" 2>/dev/null || true
}

# Where the Postgres/PgBouncer files live: inside STATE when the postgres user can
# reach it; otherwise (e.g. a clone under /root, mode 700) a private dir in /tmp,
# remembered in $STATE/pgroot so stop can find it.
pg_root() {
    if [[ -s "$STATE/pgroot" ]]; then cat "$STATE/pgroot"; else echo "$STATE/pg"; fi
}

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]; }
cluster_ok() {
    local p
    for p in "$@"; do
        redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    done
}

# ------------------------------------------------------------------- start

start_postgres() {
    local bindir="$1" root="$2" port="$3"
    local data="$root/data" sock="$root/run" tls="$root/tls"
    mkdir -p "$root" "$sock" "$tls"

    # TLS: a throwaway CA and a server certificate for localhost/127.0.0.1, so tests
    # can use sslmode=verify-full with HJ_TEST_PG_TLS_CA.
    openssl req -x509 -new -nodes -days 30 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=hellojohn-test-ca" -keyout "$tls/ca.key" -out "$tls/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
    openssl x509 -req -days 30 -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
    chmod 600 "$tls/server.key" "$tls/ca.key"

    if [[ $EUID -eq 0 ]]; then chown -R postgres: "$root"; fi

    # Host connections use scram-sha-256 (the PG 15 default, which PgBouncer also
    # speaks); the private socket dir is trusted so the script can create the role.
    as_pg "$bindir/initdb" --pgdata="$data" --username=postgres --encoding=UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions \
        >"$root/initdb.log" 2>&1 || { tail -n 40 "$root/initdb.log" >&2; die "initdb failed"; }

    cat >>"$data/postgresql.conf" <<EOF

# --- hellojohn test settings (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
# Durability is irrelevant for throwaway test data; speed is not.
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
password_encryption = 'scram-sha-256'
EOF

    as_pg "$bindir/pg_ctl" -D "$data" -l "$root/postgres.log" -w -t "$WAIT_SECS" start >/dev/null ||
        { tail -n 60 "$root/postgres.log" >&2; die "postgres did not start"; }
    wait_until postgres "$root/postgres.log" \
        "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1

    psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres <<EOF
CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
CREATE DATABASE $PG_DB OWNER $PG_USER;
EOF
}

start_pgbouncer() {
    local root="$1" pgport="$2" port="$3"
    local dir="$root/pgbouncer"
    mkdir -p "$dir"
    # Plain-text password in the auth file lets PgBouncer do SCRAM both with the
    # client and with the server.
    printf '"%s" "%s"\n' "$PG_USER" "$PG_PASSWORD" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pgport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
; Every test creates its own database, and the wildcard gives each one a pool: close idle
; server connections and pools quickly, or they pile up past PostgreSQL's max_connections.
server_idle_timeout = 5
autodb_idle_timeout = 10
; After a failed login to PostgreSQL (it is restarting) PgBouncer refuses every client for
; server_login_retry: its default, 15 s, turns a 1 s restart into 15 s of errors.
server_login_retry = 1
server_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    chmod 600 "$dir/userlist.txt"
    if [[ $EUID -eq 0 ]]; then chown -R postgres: "$dir"; fi

    local bin
    bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
    # runuser's PAM session resets the open-files limit to 1024, too few for
    # max_client_conn = 1000 plus server connections; raise it for PgBouncer.
    # shellcheck disable=SC2016 # expanded by the inner sh
    as_pg sh -c 'ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"' pgbouncer \
        "$bin" -d -q "$dir/pgbouncer.ini" ||
        { tail -n 40 "$dir/pgbouncer.log" >&2; die "pgbouncer did not start"; }
    # Ready means a real query goes through it to Postgres.
    wait_until pgbouncer "$dir/pgbouncer.log" env PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=2 \
        psql -X -q -t -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$PG_DB" -c 'SELECT 1'
}

# Redis config files are written once by `start` so start-redis can reuse them.
write_redis_conf() {
    local dir="$1" port="$2"; shift 2
    mkdir -p "$dir"
    cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $port
daemonize yes
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
# No persistence: test data is throwaway.
save ""
appendonly no
EOF
    local line
    for line in "$@"; do echo "$line" >>"$dir/redis.conf"; done
}

start_redis_dir() {
    local dir="$1" port="$2"
    redis-server "$dir/redis.conf" || die "redis-server in $dir did not start"
    wait_until "redis on $port" "$dir/redis.log" redis_ping "$port"
}

start_redis_cluster() {
    local dir="$1"; shift
    local ports=("$1" "$2" "$3") buses=("$4" "$5" "$6") i nodes=()
    for i in 0 1 2; do
        # An explicit cluster-port, also free, instead of the default port+10000.
        write_redis_conf "$dir/node$i" "${ports[$i]}" "cluster-enabled yes" \
            "cluster-config-file nodes.conf" "cluster-node-timeout 5000" \
            "cluster-port ${buses[$i]}"
        start_redis_dir "$dir/node$i" "${ports[$i]}"
        nodes+=("127.0.0.1:${ports[$i]}")
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; die "redis cluster create failed"; }
    wait_until "redis cluster" "$dir/create.log" cluster_ok "${ports[@]}"
}

cmd_start() {
    install_deps
    local bindir
    bindir="$(pg_bindir)" || die "no PostgreSQL found under /usr/lib/postgresql/*/bin"

    # A fresh start: stop anything from an earlier run and remove its state.
    cmd_stop
    mkdir -p "$STATE"
    local old_root
    old_root="$(pg_root)"
    [[ "$old_root" == "$STATE/pg" ]] || rm -rf "$old_root"
    rm -rf "$STATE/pg" "$STATE/redis" "$STATE/pgroot" "$STATE/env"

    local root="$STATE/pg"
    if [[ $EUID -eq 0 ]]; then
        chmod 755 "$STATE"
        if ! runuser -u postgres -- test -x "$STATE"; then
            root="$(mktemp -d "${TMPDIR:-/tmp}/hj-test-pg.XXXXXX")"
            chmod 755 "$root"
            echo "$root" >"$STATE/pgroot"
            log "postgres user cannot reach $STATE; using $root for postgres files"
        fi
    fi

    # Any failure from here on: stop what was started (logs stay in $STATE).
    trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping services"; cmd_stop; fi' EXIT

    local p
    read -r -a p <<<"$(free_ports 9)"
    ((${#p[@]} == 9)) || die "could not pick free ports (python3 failed?)"
    local pg_port=${p[0]} bouncer_port=${p[1]} redis_port=${p[2]}
    local cluster=("${p[3]}" "${p[4]}" "${p[5]}") buses=("${p[6]}" "${p[7]}" "${p[8]}")

    local t0=$SECONDS
    start_postgres "$bindir" "$root" "$pg_port"
    start_pgbouncer "$root" "$pg_port" "$bouncer_port"
    write_redis_conf "$STATE/redis/standalone" "$redis_port"
    start_redis_dir "$STATE/redis/standalone" "$redis_port"
    start_redis_cluster "$STATE/redis/cluster" "${cluster[@]}" "${buses[@]}"

    local base="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1"
    cat >"$STATE/env.tmp" <<EOF
export HJ_TEST_DIR='$STATE'
export HJ_TEST_SERVICES_SH='$SELF'
export HJ_TEST_DATABASE_URL='$base:$pg_port/$PG_DB?sslmode=disable'
export HJ_TEST_PGBOUNCER_URL='$base:$bouncer_port/$PG_DB?sslmode=disable'
export HJ_TEST_PGBOUNCER_PORT='$bouncer_port'
export HJ_TEST_PG_TLS_CA='$root/tls/ca.crt'
export HJ_TEST_PG_PORT='$pg_port'
export HJ_TEST_PG_DATADIR='$root/data'
export HJ_TEST_PG_BINDIR='$bindir'
export HJ_TEST_PG_SOCKET_DIR='$root/run'
export HJ_TEST_PG_CTL_USER='$RUN_AS'
export HJ_TEST_REDIS_URL='redis://127.0.0.1:$redis_port/0'
export HJ_TEST_REDIS_PORT='$redis_port'
export HJ_TEST_REDIS_CLUSTER_URL='redis+cluster://127.0.0.1:${cluster[0]},127.0.0.1:${cluster[1]},127.0.0.1:${cluster[2]}/0'
EOF
    mv "$STATE/env.tmp" "$STATE/env"
    trap - EXIT
    log "all services up in $((SECONDS - t0))s; env in $STATE/env"
}

# -------------------------------------------------------------------- stop

stop_redis_dir() {
    local dir="$1" pid port
    pid="$(live_pid "$dir/redis.pid" redis-server)" || return 0
    port="$(awk '$1 == "port" {print $2}' "$dir/redis.conf" 2>/dev/null || true)"
    # SHUTDOWN NOSAVE over the socket; SIGTERM if that does not work.
    if [[ -z "$port" ]] || ! redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1; then
        kill "$pid" 2>/dev/null || true
    fi
    wait_gone "$pid"
}

stop_postgres_at() {
    local root="$1" bindir pid
    pid="$(live_pid "$root/data/postmaster.pid" postgres)" || return 0
    bindir="$(pg_bindir)" || true
    if [[ -n "$bindir" ]]; then
        as_pg "$bindir/pg_ctl" -D "$root/data" -m fast -w -t "$WAIT_SECS" stop >/dev/null 2>&1 ||
            kill -INT "$pid" 2>/dev/null || true
    else
        kill -INT "$pid" 2>/dev/null || true # SIGINT is Postgres' "fast" shutdown
    fi
    wait_gone "$pid"
}

cmd_stop() {
    [[ -d "$STATE" ]] || return 0
    local root pid d
    root="$(pg_root)"
    if pid="$(live_pid "$root/pgbouncer/pgbouncer.pid" pgbouncer)"; then
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    stop_postgres_at "$root"
    stop_redis_dir "$STATE/redis/standalone"
    for d in "$STATE"/redis/cluster/node*; do
        [[ -d "$d" ]] && stop_redis_dir "$d"
    done
    # Logs stay for post-mortems; the env file goes so nothing uses stale ports.
    rm -f "$STATE/env"
    return 0
}

# ----------------------------------------------- failure-test helpers

load_env() {
    [[ -s "$STATE/env" ]] || die "$STATE/env not found: run scripts/services.sh start first"
    # shellcheck disable=SC1091
    source "$STATE/env"
}

cmd_restart_postgres() {
    load_env
    # -l again: without it the restarted server would log to pg_ctl's (discarded) stdout.
    local logfile
    logfile="$(dirname "$HJ_TEST_PG_DATADIR")/postgres.log"
    as_pg "$HJ_TEST_PG_BINDIR/pg_ctl" -D "$HJ_TEST_PG_DATADIR" -l "$logfile" -m fast -w -t "$WAIT_SECS" restart >/dev/null ||
        { tail -n 60 "$logfile" >&2; die "postgres restart failed"; }
    wait_until postgres "$logfile" \
        "$HJ_TEST_PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$HJ_TEST_PG_PORT" -t 1
}

# Stop and start for outage tests that need the database down for a while, not just restarted.
cmd_stop_postgres() {
    load_env
    as_pg "$HJ_TEST_PG_BINDIR/pg_ctl" -D "$HJ_TEST_PG_DATADIR" -m fast -w -t "$WAIT_SECS" stop >/dev/null ||
        die "postgres stop failed"
}

cmd_start_postgres() {
    load_env
    local logfile
    logfile="$(dirname "$HJ_TEST_PG_DATADIR")/postgres.log"
    if ! "$HJ_TEST_PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$HJ_TEST_PG_PORT" -t 1; then
        as_pg "$HJ_TEST_PG_BINDIR/pg_ctl" -D "$HJ_TEST_PG_DATADIR" -l "$logfile" -w -t "$WAIT_SECS" start >/dev/null ||
            { tail -n 60 "$logfile" >&2; die "postgres start failed"; }
    fi
    wait_until postgres "$logfile" \
        "$HJ_TEST_PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$HJ_TEST_PG_PORT" -t 1
}

# PgBouncer stopped (SIGTERM: its client connections drop) and started again on the same port.
cmd_restart_pgbouncer() {
    load_env
    local root pid
    root="$(pg_root)"
    if pid="$(live_pid "$root/pgbouncer/pgbouncer.pid" pgbouncer)"; then
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    start_pgbouncer "$root" "$HJ_TEST_PG_PORT" "$HJ_TEST_PGBOUNCER_PORT"
}

cmd_stop_redis() {
    load_env
    stop_redis_dir "$STATE/redis/standalone"
}

cmd_start_redis() {
    load_env
    if ! redis_ping "$HJ_TEST_REDIS_PORT"; then
        start_redis_dir "$STATE/redis/standalone" "$HJ_TEST_REDIS_PORT"
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) load_env >/dev/null; cat "$STATE/env" ;;
    restart-postgres) cmd_restart_postgres ;;
    restart-pgbouncer) cmd_restart_pgbouncer ;;
    stop-postgres) cmd_stop_postgres ;;
    start-postgres) cmd_start_postgres ;;
    stop-redis) cmd_stop_redis ;;
    start-redis) cmd_start_redis ;;
    install-deps) install_deps ;;
    *) echo "usage: $0 start|stop|env|restart-postgres|restart-pgbouncer|stop-postgres|start-postgres|stop-redis|start-redis|install-deps" >&2; exit 2 ;;
esac
