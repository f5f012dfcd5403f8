-- The job store, first schema. Never edit a migration that has shipped;
-- add a new file. Timestamps are Unix milliseconds; JSON is TEXT.
CREATE TABLE sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    connector TEXT NOT NULL,
    config TEXT NOT NULL,
    -- JSON Pointers of the config's airbyte_secret fields, from the spec,
    -- so listing masks secrets without running the connector.
    secret_paths TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE destinations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    connector TEXT NOT NULL,
    config TEXT NOT NULL,
    secret_paths TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    source_id BIGINT NOT NULL REFERENCES sources (id),
    destination_id BIGINT NOT NULL REFERENCES destinations (id),
    -- What the user asked for: stream names (JSON array, empty = all) and
    -- modes (NULL = Airbyte's defaults); the catalog is built from them.
    streams TEXT NOT NULL DEFAULT '[]',
    sync_mode TEXT,
    destination_sync_mode TEXT,
    catalog TEXT NOT NULL,
    schedule TEXT NOT NULL DEFAULT 'manual',
    namespace TEXT NOT NULL DEFAULT 'source',
    prefix TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'inactive')),
    schema_change TEXT NOT NULL DEFAULT 'propagate_columns'
        CHECK (schema_change IN ('ignore', 'propagate_columns', 'propagate_fully', 'disable')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('sync', 'reset', 'refresh')),
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    -- The schema changes found before the job ran (JSON array).
    changes TEXT NOT NULL DEFAULT '[]',
    -- Who runs it: HOST:PID, to tell a running job from an orphaned one.
    owner TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT
);
CREATE INDEX jobs_by_connection ON jobs (connection_id, id);
CREATE INDEX jobs_by_status ON jobs (status, id);
-- One running job per connection, whoever starts it.
CREATE UNIQUE INDEX one_running_job ON jobs (connection_id) WHERE status = 'running';

CREATE TABLE attempts (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    -- Per-stream records, bytes and committed records (JSON array).
    stats TEXT NOT NULL DEFAULT '[]',
    records BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    records_committed BIGINT NOT NULL DEFAULT 0,
    -- {origin, failure_type, message} (JSON), when it failed.
    failure TEXT,
    log_path TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE connection_state (
    connection_id BIGINT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    state_type TEXT NOT NULL CHECK (state_type IN ('STREAM', 'GLOBAL', 'LEGACY')),
    -- In Airbyte's --state file form, as the source sent it.
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
