-- A stable id for every source, destination, connection and job, as
-- Airbyte's APIs have: a v4 UUID in its lowercase hyphenated text form.
-- The store sets it on insert; rows made before are given one here.
-- Numbered 0005: 0004 may be applied before or after it.
ALTER TABLE sources ADD COLUMN uuid TEXT;
ALTER TABLE destinations ADD COLUMN uuid TEXT;
ALTER TABLE connections ADD COLUMN uuid TEXT;
ALTER TABLE jobs ADD COLUMN uuid TEXT;
-- A v4 UUID from 16 random bytes: version nibble 4, variant 8 to b.
-- Each randomblob() and random() is evaluated again for each row.
UPDATE sources SET uuid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
UPDATE destinations SET uuid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
UPDATE connections SET uuid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
UPDATE jobs SET uuid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
CREATE UNIQUE INDEX sources_by_uuid ON sources (uuid);
CREATE UNIQUE INDEX destinations_by_uuid ON destinations (uuid);
CREATE UNIQUE INDEX connections_by_uuid ON connections (uuid);
CREATE UNIQUE INDEX jobs_by_uuid ON jobs (uuid);

