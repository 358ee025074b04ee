#!/usr/bin/env bash
# A HelloJohn cluster on loopback (three instances behind nginx, PostgreSQL through PgBouncer,
# Redis) through a rolling restart, a kill -9, a Redis outage, a PostgreSQL restart and a
# PgBouncer restart, under load; then the database is checked against every answer. See
# scripts/cluster.py for what passes.
#
#   bash scripts/cluster.sh [--seconds 5] [--out perf/results/cluster-DATE] [--hj target/release/hj]
#
# Starts the test services when they are not running (and stops them again then). Needs nginx
# (bash scripts/services.sh install-deps). scripts/test.sh runs a short version.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="$REPO/scripts/services.sh"
started=0
if [[ -z "${HJ_TEST_DATABASE_URL:-}" ]]; then
    bash "$SERVICES" start >/dev/null
    started=1
    # shellcheck disable=SC1091
    source "${HJ_TEST_DIR:-$REPO/.hj-test}/env"
fi
[[ $started == 1 ]] && trap 'bash "$SERVICES" stop' EXIT
/usr/bin/python3 "$REPO/scripts/cluster.py" "$@"
