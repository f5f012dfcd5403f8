# Idempotent set-up of what the tests need; sourced by scripts/test.

log() { printf '==> %s\n' "$*" >&2; }

# PostgreSQL 15 from Debian's packages, started if it is not running.
start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        log "installing PostgreSQL 15"
        apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null
    fi
    if ! pg_lsclusters -h 2>/dev/null | awk '$1 == "15" && $2 == "main" && $4 == "online"' | grep -q .; then
        log "starting PostgreSQL 15"
        pg_ctlcluster --skip-systemctl-redirect 15 main start
    fi
    for _ in $(seq 1 30); do
        pg_isready -q -h localhost -p 5432 && return 0
        sleep 1
    done
    log "PostgreSQL did not become ready"
    return 1
}

# The Airbyte connectors from PyPI the tests run, installed once into a
# directory kept across runs.
install_python_connectors() {
    local sluice=$1
    export SLUICE_TEST_CONNECTORS_DIR=${SLUICE_TEST_CONNECTORS_DIR:-$PWD/target/test-connectors}
    log "Python connectors in $SLUICE_TEST_CONNECTORS_DIR"
    SLUICE_CONNECTORS_DIR=$SLUICE_TEST_CONNECTORS_DIR SLUICE_DATA_DIR=$PWD/target/test-data \
        "$sluice" connector install python:airbyte-source-faker==7.2.1
}
