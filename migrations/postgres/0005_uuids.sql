-- A stable id for every source, destination, connection and job, as
-- Airbyte's APIs have: a v4 UUID in its lowercase hyphenated text form.
-- TEXT, as on SQLite, so each query is written once for both backends
-- and binds and reads a string (a UUID column would need casts in every
-- query that compares it with a bound value). The store sets it on
-- insert; rows made before are given one here (gen_random_uuid is built
-- in from PostgreSQL 13). Numbered 0005: 0004 may be applied before or
-- after it.
ALTER TABLE sources ADD COLUMN uuid TEXT;
ALTER TABLE destinations ADD COLUMN uuid TEXT;
ALTER TABLE connections ADD COLUMN uuid TEXT;
ALTER TABLE jobs ADD COLUMN uuid TEXT;
UPDATE sources SET uuid = gen_random_uuid()::text WHERE uuid IS NULL;
UPDATE destinations SET uuid = gen_random_uuid()::text WHERE uuid IS NULL;
UPDATE connections SET uuid = gen_random_uuid()::text WHERE uuid IS NULL;
UPDATE jobs SET uuid = gen_random_uuid()::text WHERE uuid IS NULL;
ALTER TABLE sources ADD CONSTRAINT sources_uuid_key UNIQUE (uuid);
ALTER TABLE destinations ADD CONSTRAINT destinations_uuid_key UNIQUE (uuid);
ALTER TABLE connections ADD CONSTRAINT connections_uuid_key UNIQUE (uuid);
ALTER TABLE jobs ADD CONSTRAINT jobs_uuid_key UNIQUE (uuid);
