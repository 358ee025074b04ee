#!/usr/bin/env bash
# PostgreSQL CPU per sign-in write, the statement shapes side by side (migration 0004_hot_writes):
#   pipelined: BEGIN; family; token; the outbox statement; COMMIT (the store before 0004), as
#              unnamed statements (pgbench -M extended, like `query_typed`);
#   function:  one `SELECT CASE WHEN hj_insert_refresh_token(..) THEN hj_record_event(..) END`;
#   find:      the sign-in's read (user and password hash by tenant and email), for scale.
# Each runs at a sign-in-like rate (-R) with 2 clients while `hj bench ceiling` keeps both cores
# hashing, as a flood does: Argon2's 19 MiB per hash evicts PostgreSQL's caches, which makes every
# statement several times dearer than on idle cores (PERF_IDLE=1 runs without the hashing).
# Prints PostgreSQL's CPU (all postgres processes, from /proc) per transaction.
#
#   PERF_ADMIN_URL=postgresql://... bash perf/pg-writes.sh [ROUNDS]
#
# Needs `cargo build --release -p hj`, pgbench (PostgreSQL's server package) and a PERF_ADMIN_URL
# allowed to CREATE DATABASE (perf/lib.sh).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HJ="${HJ:-$REPO/target/release/hj}"
ROUNDS="${1:-2}"
PGBENCH="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)"
[[ -x "$PGBENCH" ]] || { echo "pg-writes.sh: pgbench is missing" >&2; exit 2; }
OUT="$(mktemp -d)"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"

# The server only seeds the users and stays idle; stopping it drops the database.
target="$(start_server postgres)"
trap 'kill "${hashing:-}" 2>/dev/null; stop_server postgres; rm -rf "$OUT"' EXIT
"$HJ" bench seed --target "$target" --users 200 --seed-file "$OUT/seed.json" >/dev/null 2>&1
url="$(with_db "$PERF_ADMIN_URL" "$(cat "$OUT/postgres.db")")"
read -r uid tid < <(psql -Atq "$url" -F ' ' -c "SELECT id, tenant_id FROM users LIMIT 1")

# The outbox statement of the store before 0004 (storage/src/postgres/events.rs then).
outbox="WITH targets AS (SELECT e.id FROM webhook_endpoints e WHERE e.tenant_id = '$tid' AND ('user.login' = ANY (e.events) OR '*' = ANY (e.events))), ev AS (INSERT INTO webhook_events (id, tenant_id, type, actor_id, actor_type, target_id, target_type, ip_address, user_agent, metadata, result, created_at) SELECT md5(:r::text)::uuid, '$tid', 'user.login', '$uid', 'user', '$uid', 'user', '127.0.0.1', 'wrk', '{}'::jsonb, 'success', 1 WHERE EXISTS (SELECT 1 FROM targets) RETURNING id, tenant_id, created_at) INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id, status, attempts, generation, next_attempt_at_ms, created_at) SELECT gen_random_uuid(), ev.id, t.id, ev.tenant_id, 'pending', 0, 0, ev.created_at * 1000, ev.created_at FROM ev CROSS JOIN targets t"
cat >"$OUT/pipelined.sql" <<EOF
\\set r random(1, 9000000000000000)
BEGIN;
INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at) VALUES (md5(:r::text)::uuid, '$uid', '$tid', 'local-app', 1) ON CONFLICT (id) DO NOTHING;
INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, issued_at, expires_at) VALUES (sha256(:r::text::bytea), md5(:r::text)::uuid, '$uid', '$tid', 'local-app', 1, 2);
$outbox;
COMMIT;
EOF
cat >"$OUT/function.sql" <<EOF
\\set r random(1, 9000000000000000)
SELECT CASE WHEN hj_insert_refresh_token(sha256(:r::text::bytea), md5(:r::text)::uuid, '$uid', '$tid', 'local-app', 1, 2) THEN hj_record_event(md5(:r::text)::uuid, '$tid', 'user.login', '$uid', 'user', '$uid', 'user', '127.0.0.1', 'wrk', '{}'::jsonb, 'success', 1) ELSE false END;
EOF
cat >"$OUT/find.sql" <<EOF
\\set n random(0, 199)
SELECT u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields, u.disabled, u.created_at, u.app_metadata, p.password_hash FROM users u JOIN password_identities p ON p.user_id = u.id WHERE u.tenant_id = '$tid' AND u.email = 'bench-' || :n || '@bench.hellojohn.test';
EOF

postgres_ticks() {
    python3 -c '
import os
s = 0
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            if open(f"/proc/{p}/comm").read().strip() == "postgres":
                f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
                s += sum(int(x) for x in f[11:15])
        except OSError:
            pass
print(s)'
}

if [[ -z "${PERF_IDLE:-}" ]]; then
    "$HJ" bench ceiling --workers "$(nproc)" --duration "$(( ROUNDS * 40 + 10 ))s" >/dev/null 2>&1 &
    hashing=$!
    sleep 1
fi
echo "| round | shape | transactions | PostgreSQL CPU per transaction |"
echo "|---|---|---:|---:|"
for round in $(seq "$ROUNDS"); do
    for shape in pipelined function find; do
        before="$(postgres_ticks)"
        n="$("$PGBENCH" -n -M extended -c2 -j2 -T 10 -R 150 -f "$OUT/$shape.sql" "$url" 2>/dev/null \
            | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')"
        after="$(postgres_ticks)"
        python3 -c "import sys; b,a,n=map(int,sys.argv[1:4]); print(f'| {sys.argv[4]} | {sys.argv[5]} | {n} | {(a-b)*10000/n:.0f} us |')" \
            "$before" "$after" "$n" "$round" "$shape"
    done
done
