#!/usr/bin/env bash
# Every 3 s: the audit_log rows by action in each hj_perf_* database (absent table: schema < 14).
source /work/main/.hj-test/env
U="$HJ_TEST_DATABASE_URL"
while true; do
  for db in $(psql -Atq "$U" -c "select datname from pg_database where datname like 'hj_perf_%'"); do
    url="${U/\/hellojohn\?/\/$db?}"
    v=$(psql -Atq "$url" -c "select coalesce(max(version)::text,'?') from schema_migrations" 2>/dev/null || echo '?')
    a=$(psql -Atq "$url" -F= -c "select action, count(*) from audit_log group by 1 order by 1" 2>&1 | tr '\n' ' ')
    echo "$(date -u +%T) $db v$v $a"
  done
  echo "$(date -u +%T) load $(cut -d" " -f1-3 /proc/loadavg)"
  sleep 3
done
