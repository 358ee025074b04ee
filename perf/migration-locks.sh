#!/usr/bin/env bash
# What an upgrade's migrations stop while they run on a large PostgreSQL: the previous release's
# schema (its `hj migrate`) with N users, N sessions and N refresh families, then this build's
# `hj migrate` while one psql session runs sign-in-shaped statements every 20 ms (a user read by
# tenant and email, then a session insert). Prints how long the migrations took and the slowest
# probe statements: a statement that waits on a migration's lock shows that wait.
#
#   PERF_ADMIN_URL=postgresql://... bash perf/migration-locks.sh OLD_HJ [NEW_HJ] [N]
#
# OLD_HJ: the previous release's hj (scripts/upgrade.py builds one into
# $HJ_TEST_DIR/previous/<sha>/hj); NEW_HJ default target/release/hj; N default 1000000.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OLD="${1:?usage: migration-locks.sh OLD_HJ [NEW_HJ] [N]}"
NEW="${2:-$REPO/target/release/hj}"
N="${3:-1000000}"
: "${PERF_ADMIN_URL:?set PERF_ADMIN_URL to a PostgreSQL URL that may CREATE DATABASE}"
# shellcheck source=perf/lib.sh
source "$REPO/perf/lib.sh"
db="hj_perf_mig_$$"
url="$(with_db "$PERF_ADMIN_URL" "$db")"
work="$(mktemp -d)"
trap 'psql -q "$PERF_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
psql -q "$PERF_ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
HELLOJOHN_DATABASE_URL="$url" "$OLD" migrate | tail -n 1
psql -q "$url" >/dev/null 2>&1 <<SQL
INSERT INTO tenants (id, slug, name, created_at) VALUES ('11111111-1111-1111-1111-111111111111', 'big', 'Big', 1);
INSERT INTO users (id, tenant_id, email, created_at)
  SELECT gen_random_uuid(), '11111111-1111-1111-1111-111111111111', 'u' || g || '@big.test', g
  FROM generate_series(1, $N) g;
INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at)
  SELECT sha256(('s' || u.email)::bytea), u.id, u.tenant_id, 'web', u.created_at, 9999999999 FROM users u;
INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at)
  SELECT gen_random_uuid(), u.id, u.tenant_id, 'web', u.created_at FROM users u;
VACUUM ANALYZE users; VACUUM ANALYZE sessions; VACUUM ANALYZE refresh_families;
SQL
python3 - "$N" >"$work/probe.sql" <<'PY'
import sys
n = int(sys.argv[1])
t = "tenant_id = '11111111-1111-1111-1111-111111111111'"
print("\\timing on")
for i in range(1500):
    e = f"u{(i * 37) % n + 1}@big.test"
    print(f"SELECT id FROM users WHERE {t} AND email = '{e}';")
    print(f"INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at) "
          f"SELECT sha256('probe{i}'::bytea), id, tenant_id, 'web', 5, 9999999999 FROM users WHERE {t} AND email = '{e}';")
    print("SELECT pg_sleep(0.02);")
PY
psql "$url" -e -f "$work/probe.sql" >"$work/probe.out" 2>&1 &
probe=$!
sleep 3
t0=$(date +%s.%N)
HELLOJOHN_DATABASE_URL="$url" "$NEW" migrate | tail -n 1
t1=$(date +%s.%N)
wait "$probe"
echo "rows: $N users, $N sessions, $N refresh families"
echo "migrate: $(echo "$t1 - $t0" | bc) s"
# The probe's statements (the pg_sleep ones take 20 ms by design), slowest last, in ms.
grep '^Time' "$work/probe.out" | awk '{print $2}' | sort -n |
    awk '{a[NR] = $1} END {printf "probe: %d statements, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR * 0.5)], a[int(NR * 0.99)], a[NR]}'
# The slowest three other than the sleeps, with their statement.
awk '/^(SELECT id|INSERT INTO)/ {q = substr($0, 1, 60)} /^Time/ && q !~ /pg_sleep/ {print $2 " ms  " q}' "$work/probe.out" |
    sort -rn | head -n 3
