#!/usr/bin/env bash
# The OpenID Connect conformance suite (conformance/, docs/oauth.md#conformance-suite): the
# oidcc-basic-certification-test-plan modules driven by openid-client, and a headless Chromium
# test of the hosted sign-in page, against real `hj serve` processes. Builds nothing.
#
#   scripts/conformance.sh [path/to/hj]        default target/debug/hj
#
# Two modes, each on fresh stores, free ports, its own clients and users:
#   embedded  one `hj serve` on the embedded SQLite store
#   cluster   two `hj serve` sharing one fresh PostgreSQL database (made through
#             HJ_TEST_DATABASE_URL, migrated, dropped at the end) and the test Redis, with the
#             same issuer (instance A's URL) and master key: the browser signs in at A, the
#             token, userinfo, JWKS, revocation, introspection and logout requests go to B
# HJ_CONFORMANCE_MODES="embedded cluster" picks them (cluster needs `scripts/services.sh start`,
# whose $HJ_TEST_DIR/env it reads when HJ_TEST_DATABASE_URL is unset).
# HJ_CONFORMANCE_SCREENSHOT=path.png: where the browser test saves its screenshot (default: the
# run's temporary directory). Exit status: non-zero when any module of any mode failed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${1:-$REPO/target/debug/hj}"
[[ "$HJ" == /* ]] || HJ="$PWD/$HJ"
MODES="${HJ_CONFORMANCE_MODES:-embedded cluster}"
MASTER_KEY=606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f
TENANT=local TENANT_NAME="HelloJohn Conformance"

log() { echo "conformance.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x "$HJ" ]] || die "no hj binary at $HJ (cargo build -p hj)"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required (Node.js 20)"

# Dependencies: npm ci from the lockfile, again only when the lockfile changed.
CONF="$REPO/conformance"
if ! cmp -s "$CONF/package-lock.json" "$CONF/node_modules/.installed-lock.json" 2>/dev/null; then
    (cd "$CONF" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
    cp "$CONF/package-lock.json" "$CONF/node_modules/.installed-lock.json"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hj-conformance.XXXXXX")"
PIDS=() DB="" ADMIN_URL="" LOGS="$WORK"
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
    if [[ -n "$DB" ]]; then
        psql -X -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 ||
            log "could not drop database $DB"
        DB=""
    fi
}
# HJ_CONFORMANCE_KEEP=1 keeps the run's directory (server logs, data, screenshots).
trap 'cleanup; if [[ -n "${HJ_CONFORMANCE_KEEP:-}" ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi' EXIT
trap 'exit 130' INT TERM

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
with_db() { python3 -c 'import sys,re; u,d=sys.argv[1],sys.argv[2]; h,_,q=u.partition("?"); print(re.sub(r"/[^/]*$","/"+d,h)+("?"+q if q else ""))' "$1" "$2"; }
wait_healthy() {
    python3 - "$1" "$2" <<'EOF' || { log "$1 did not become healthy; its log:"; tail -n 40 "$3" >&2; return 1; }
import sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    try:
        import os; os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    time.sleep(0.1)
sys.exit(1)
EOF
}

# hj with the store's settings (hj_env: VAR=value per mode); its notes go to the mode's log.
hj() { env "${hj_env[@]}" HELLOJOHN_LOG=error "$HJ" "$@" 2>>"$LOGS/hj.log"; }

# Tenant and three clients; exports what the runners read.
make_clients() {
    local cb="$1" out
    hj tenant create --slug "$TENANT" --name "$TENANT_NAME" >/dev/null || return 1
    hj client create --tenant "$TENANT" --client-id conformance-public --name "Conformance RP" \
        --redirect-uri "$cb/cb" --post-logout-redirect-uri "$cb/logged-out" >/dev/null || return 1
    out="$(hj client create --tenant "$TENANT" --client-id conformance-basic --name "Conformance RP (basic)" \
        --confidential --redirect-uri "$cb/cb" --scopes openid,email,profile,conformance:read \
        --grant-types authorization_code,refresh_token,client_credentials)" || return 1
    HJ_BASIC_CLIENT_SECRET="$(sed -n 's/^client_secret=//p' <<<"$out")"
    out="$(hj client create --tenant "$TENANT" --client-id conformance-post --name "Conformance RP (post)" \
        --confidential --redirect-uri "$cb/cb")" || return 1
    HJ_POST_CLIENT_SECRET="$(sed -n 's/^client_secret=//p' <<<"$out")"
    [[ -n "$HJ_BASIC_CLIENT_SECRET" && -n "$HJ_POST_CLIENT_SECRET" ]] ||
        { log "hj client create printed no client_secret= line"; return 1; }
    export HJ_TENANT="$TENANT" HJ_TENANT_NAME="$TENANT_NAME" HJ_REDIRECT_URI="$cb/cb" HJ_POST_LOGOUT_REDIRECT_URI="$cb/logged-out" \
        HJ_PUBLIC_CLIENT_ID=conformance-public HJ_BASIC_CLIENT_ID=conformance-basic \
        HJ_POST_CLIENT_ID=conformance-post HJ_BASIC_CLIENT_SECRET HJ_POST_CLIENT_SECRET \
        HJ_CLIENT_CREDENTIALS_SCOPE=conformance:read
}

# serve NAME PORT ISSUER: starts `hj serve` in the background.
serve() {
    local name="$1" port="$2" issuer="$3"
    env "${hj_env[@]}" HELLOJOHN_LISTEN="127.0.0.1:$port" HELLOJOHN_BASE_URL="$issuer" \
        HELLOJOHN_RATE_LIMIT_ENABLED=false HELLOJOHN_LOG=warn "$HJ" serve >"$LOGS/$name.log" 2>&1 &
    PIDS+=($!)
    wait_healthy "http://127.0.0.1:$port" "$!" "$LOGS/$name.log"
}

# Runs both runners; the browser test takes the callback port for its landing server.
run_suite() {
    local mode="$1" cb_port="$2" rc=0
    echo "== conformance ($mode): oidcc-basic =="
    timeout 150 node "$CONF/oidcc-basic.js" || rc=1
    echo "== conformance ($mode): hosted sign-in page in Chromium =="
    HJ_CALLBACK_PORT="$cb_port" HJ_SCREENSHOT="${HJ_CONFORMANCE_SCREENSHOT:-$LOGS/hosted-login.png}" \
        timeout 90 node "$CONF/browser.js" || rc=1
    return "$rc"
}

embedded() {
    local port cb_port
    read -r port cb_port <<<"$(free_ports 2)"
    hj_env=(HELLOJOHN_DATA_DIR="$LOGS/data")
    make_clients "http://127.0.0.1:$cb_port" || return 1
    serve embedded "$port" "http://127.0.0.1:$port" || return 1
    HJ_ISSUER="http://127.0.0.1:$port" run_suite embedded "$cb_port"
}

cluster() {
    if [[ -z "${HJ_TEST_DATABASE_URL:-}" || -z "${HJ_TEST_REDIS_URL:-}" ]]; then
        local envfile="${HJ_TEST_DIR:-$REPO/.hj-test}/env"
        [[ -s "$envfile" ]] || { log "cluster mode needs the test services: bash scripts/services.sh start"; return 1; }
        # shellcheck disable=SC1090
        source "$envfile"
    fi
    local port_a port_b cb_port
    read -r port_a port_b cb_port <<<"$(free_ports 3)"
    ADMIN_URL="$HJ_TEST_DATABASE_URL"
    DB="hj_conformance_$$_$RANDOM"
    psql -X -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null || { DB=""; log "could not create a database"; return 1; }
    hj_env=(HELLOJOHN_DATABASE_URL="$(with_db "$ADMIN_URL" "$DB")" HELLOJOHN_MASTER_KEY="$MASTER_KEY"
        HELLOJOHN_REDIS_URL="$HJ_TEST_REDIS_URL" HELLOJOHN_DATA_DIR="$LOGS/data")
    hj migrate >/dev/null || return 1
    make_clients "http://127.0.0.1:$cb_port" || return 1
    # Both instances claim A's URL as their issuer: tokens from either verify at both.
    serve cluster-a "$port_a" "http://127.0.0.1:$port_a" || return 1
    serve cluster-b "$port_b" "http://127.0.0.1:$port_a" || return 1
    HJ_ISSUER="http://127.0.0.1:$port_a" HJ_BACKEND="http://127.0.0.1:$port_b" run_suite cluster "$cb_port"
}

status=0
t0=$SECONDS
for mode in $MODES; do
    case "$mode" in
        embedded | cluster) ;;
        *) die "unknown mode $mode (embedded, cluster)" ;;
    esac
    LOGS="$WORK/$mode"
    mkdir -p "$LOGS"
    if ! "$mode"; then
        status=1
        for f in "$LOGS"/*.log; do
            [[ -s "$f" ]] && { log "$mode: last lines of $(basename "$f"):"; tail -n 20 "$f" >&2; }
        done
    fi
    cleanup
done
echo "== conformance: $([[ $status -eq 0 ]] && echo passed || echo FAILED) in $((SECONDS - t0)) s =="
exit "$status"
