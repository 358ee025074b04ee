#!/usr/bin/env bash
# The upgrade and the rollback against the previous release (the commit on the first line of
# scripts/previous-release): the old release serves under load while this build migrates, both
# serve side by side, the old one restarts on the new schema, the new one again. See
# scripts/upgrade.py for what passes.
#
#   bash scripts/upgrade.sh [--previous COMMIT] [--hj target/debug/hj] [--seconds 3] [--out DIR]
#
# The previous release is built once (debug) into $HJ_TEST_DIR/previous/<sha>/hj and kept;
# this build's hj is built here when --hj is not given. Starts the test services when they are
# not running (and stops them again then). scripts/test.sh runs it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="$REPO/scripts/services.sh"
export HJ_TEST_DIR="${HJ_TEST_DIR:-$REPO/.hj-test}"
args=("$@")
given_hj=0
for arg in "$@"; do
    case "$arg" in --hj | --hj=*) given_hj=1 ;; esac
done
if [[ $given_hj == 0 ]]; then
    (cd "$REPO" && cargo build -q -p hj)
    args+=(--hj "$REPO/target/debug/hj")
fi
# The previous release first: its build needs no services.
/usr/bin/python3 "$REPO/scripts/upgrade.py" --build-only "${args[@]}"
started=0
if [[ -z "${HJ_TEST_DATABASE_URL:-}" ]]; then
    bash "$SERVICES" start >/dev/null
    started=1
    # shellcheck disable=SC1091
    source "$HJ_TEST_DIR/env"
fi
[[ $started == 1 ]] && trap 'bash "$SERVICES" stop' EXIT
/usr/bin/python3 "$REPO/scripts/upgrade.py" "${args[@]}"
