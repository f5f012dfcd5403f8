# Idempotent set-up of what the tests need; sourced by scripts/test.

log() { printf '==> %s\n' "$*" >&2; }

# Where cargo builds, as cargo itself decides.
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

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
    local ready=
    for _ in $(seq 1 30); do
        pg_isready -q -h localhost -p 5432 && ready=1 && break
        sleep 1
    done
    if [ -z "$ready" ]; then
        log "PostgreSQL did not become ready"
        return 1
    fi
    # The role the tests connect as (SLUICE_TEST_DATABASE_URL's default):
    # each test creates databases of its own, so it needs CREATEDB. It drops
    # them WITH (FORCE), which refuses to go on when an autovacuum worker has
    # just entered the database unless the role may signal other backends
    # (pg_signal_backend).
    su postgres -c "psql -q -v ON_ERROR_STOP=1 -d postgres" <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice') THEN
        CREATE ROLE sluice LOGIN PASSWORD 'sluice' CREATEDB;
    ELSE
        ALTER ROLE sluice LOGIN PASSWORD 'sluice' CREATEDB;
    END IF;
END
$$;
SET client_min_messages = warning;
GRANT pg_signal_backend TO sluice;
SQL
    export SLUICE_TEST_DATABASE_URL=${SLUICE_TEST_DATABASE_URL:-postgres://sluice:sluice@localhost:5432/postgres}
    enable_postgres_tls
}

# TLS on the test server with a certificate for `localhost` signed by a CA
# of the tests' own (made once, kept in the cluster's data directory), so
# the sslmode tests can verify it; the CA goes to SLUICE_TEST_PG_CA.
enable_postgres_tls() {
    local dir=/var/lib/postgresql/15/main/sluice-test-tls
    if [ ! -s "$dir/server.crt" ]; then
        log "making a test CA and a TLS certificate for PostgreSQL"
        mkdir -p "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sluice test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$dir/ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 3650 -extfile "$dir/ext" -out "$dir/server.crt" 2>/dev/null
        chown -R postgres:postgres "$dir"
        chmod 600 "$dir/server.key" "$dir/ca.key"
    fi
    su postgres -c "psql -q -v ON_ERROR_STOP=1 -d postgres" >/dev/null <<SQL
ALTER SYSTEM SET ssl_cert_file = '$dir/server.crt';
ALTER SYSTEM SET ssl_key_file = '$dir/server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL
    mkdir -p "$TARGET_DIR/test-data"
    cp "$dir/ca.crt" "$TARGET_DIR/test-data/pg-ca.crt"
    export SLUICE_TEST_PG_CA=$TARGET_DIR/test-data/pg-ca.crt
}

# The Airbyte connectors from PyPI the tests run, installed once into a
# directory kept across runs.
install_python_connectors() {
    local sluice=$1
    export SLUICE_TEST_CONNECTORS_DIR=${SLUICE_TEST_CONNECTORS_DIR:-$TARGET_DIR/test-connectors}
    log "Python connectors in $SLUICE_TEST_CONNECTORS_DIR"
    SLUICE_CONNECTORS_DIR=$SLUICE_TEST_CONNECTORS_DIR SLUICE_DATA_DIR=$TARGET_DIR/test-data \
        "$sluice" connector install python:airbyte-source-faker==7.2.1
}

# schemathesis (API fuzzing from the daemon's OpenAPI document) and
# openapi-spec-validator, from PyPI, in a virtualenv of their own kept
# across runs; reinstalled only when the pinned versions change.
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
install_openapi_tools() {
    export SLUICE_TEST_OPENAPI_VENV=${SLUICE_TEST_OPENAPI_VENV:-$TARGET_DIR/schemathesis}
    local venv=$SLUICE_TEST_OPENAPI_VENV
    local want="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
    if [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$venv/.sluice-installed" 2>/dev/null)" = "$want" ]; then
        return
    fi
    log "schemathesis and openapi-spec-validator in $venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # $want is a list of requirements
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    printf '%s' "$want" >"$venv/.sluice-installed"
}

# Debian's Chromium and the browser tests' npm packages (puppeteer-core,
# which drives that Chromium: it downloads no browser of its own).
install_browser_tools() {
    if ! command -v chromium >/dev/null 2>&1; then
        log "installing Chromium"
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "installing Node.js and npm"
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    local dir=tests/browser
    if [ ! -d "$dir/node_modules/puppeteer-core" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        log "npm packages of $dir"
        (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    fi
}
