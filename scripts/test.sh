#!/usr/bin/env bash
# THE test command: starts the test services (PostgreSQL, PgBouncer, Redis, Redis
# Cluster), runs `cargo test --workspace --all-targets` against them, stops them.
#
#   scripts/test.sh                          everything
#   scripts/test.sh -p hellojohn-engine      one package (extra args go to cargo test)
#   scripts/test.sh -p hellojohn-storage --test services -- --nocapture
#
# Exits with cargo's status. Services live in $HJ_TEST_DIR (default <repo>/.hj-test).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="$REPO/scripts/services.sh"
export HJ_TEST_DIR="${HJ_TEST_DIR:-$REPO/.hj-test}"
cd "$REPO"

# Two runs sharing one state dir would stop each other's services, so hold a lock
# for the whole run. `flock -o` keeps the lock in flock itself and closes it for the
# children, so a daemon that outlives us cannot keep it held.
if [[ -z "${HJ_TEST_LOCKED:-}" ]] && command -v flock >/dev/null; then
    mkdir -p "$HJ_TEST_DIR"
    lock="$HJ_TEST_DIR/.lock"
    if ! flock -n "$lock" true; then
        echo "test.sh: another run is using $HJ_TEST_DIR; waiting (set HJ_TEST_DIR to run side by side)" >&2
    fi
    HJ_TEST_LOCKED=1 exec flock -o "$lock" bash "${BASH_SOURCE[0]}" "$@"
fi

# Missing packages (fresh CI machine) are installed with apt-get.
bash "$SERVICES" install-deps

# The deployment kit (Dockerfile, deploy/) against the code, offline: seconds.
bash "$REPO/scripts/check-deploy.sh"

# Always stop the services, whatever happens to the tests.
trap 'bash "$SERVICES" stop' EXIT
bash "$SERVICES" start
# shellcheck disable=SC1091
source "$HJ_TEST_DIR/env"

# `cargo test` rejects/ignores some flag mixes, so --workspace and --all-targets are only
# added when the caller did not pick packages or targets themselves (args after `--` go
# to the test binaries and are not looked at).
workspace=(--workspace) targets=(--all-targets)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p* | --package | --package=*) workspace=() ;;
        --lib | --bins | --bin | --bin=* | --tests | --test | --test=* | --examples | --example | \
            --example=* | --benches | --bench | --bench=* | --doc | --all-targets) targets=() ;;
    esac
done

set +e
cargo test "${workspace[@]}" "${targets[@]}" "$@"
status=$?
# With no arguments this is the whole suite: the engine's API suite then runs again against
# PostgreSQL directly and through PgBouncer in transaction mode (the same tests, another store).
if [[ $# -eq 0 ]]; then
    for store in postgres pgbouncer; do
        echo "== engine API suite on $store =="
        HJ_TEST_STORE="$store" cargo test -p hellojohn-engine --test it
        rc=$?
        [[ $status -eq 0 ]] && status=$rc
    done
    # The cluster (three instances behind nginx, PgBouncer, Redis) through a rolling restart,
    # a kill -9, a Redis outage and PostgreSQL and PgBouncer restarts, under load: the short
    # version of scripts/cluster.sh, with the debug binary the tests built.
    echo "== cluster: faults under load behind nginx =="
    cargo build -q -p hj && /usr/bin/python3 "$REPO/scripts/cluster.py" --hj "$REPO/target/debug/hj" --seconds 2
    rc=$?
    [[ $status -eq 0 ]] && status=$rc
    # The upgrade and the rollback: the previous release (scripts/previous-release, built once
    # into $HJ_TEST_DIR/previous/) serves under load while this build migrates, both serve side
    # by side, the old one restarts on the new schema, this one again (scripts/upgrade.py).
    echo "== upgrade: previous release $(head -n 1 "$REPO/scripts/previous-release" | cut -c 1-12) -> this build =="
    cargo build -q -p hj && /usr/bin/python3 "$REPO/scripts/upgrade.py" --hj "$REPO/target/debug/hj"
    rc=$?
    [[ $status -eq 0 ]] && status=$rc
    # The admin API against its OpenAPI document: the document validated (openapi-spec-validator),
    # then a live server on the embedded store fuzzed by schemathesis (scripts/admin-fuzz.sh),
    # with the same binary.
    echo "== admin API: OpenAPI document, schemathesis =="
    bash "$REPO/scripts/admin-fuzz.sh" "$REPO/target/debug/hj"
    rc=$?
    [[ $status -eq 0 ]] && status=$rc
    # The OpenID Connect conformance suite (openid-client, and the hosted sign-in page in headless
    # Chromium) against the same binary: the embedded store, then two instances on PostgreSQL.
    echo "== conformance: oidcc-basic and the hosted sign-in page =="
    bash "$REPO/scripts/conformance.sh" "$REPO/target/debug/hj"
    rc=$?
    [[ $status -eq 0 ]] && status=$rc
fi
set -e
exit "$status"
