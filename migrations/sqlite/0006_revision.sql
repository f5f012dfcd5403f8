-- A counter of the changes a listing can show: bumped in the same
-- statement as any change to a source, destination or connection, and
-- to a job's status or times. A daemon keeps a listing's answer until the
-- counter moves, whichever process or daemon made the change.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO revision (id, n) VALUES (1, 0);
CREATE TRIGGER sources_inserted AFTER INSERT ON sources BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER sources_updated AFTER UPDATE ON sources BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER sources_deleted AFTER DELETE ON sources BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER destinations_inserted AFTER INSERT ON destinations BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER destinations_updated AFTER UPDATE ON destinations BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER destinations_deleted AFTER DELETE ON destinations BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER connections_inserted AFTER INSERT ON connections BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER connections_updated AFTER UPDATE ON connections BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER connections_deleted AFTER DELETE ON connections BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER jobs_inserted AFTER INSERT ON jobs BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER jobs_updated AFTER UPDATE OF status, started_at, ended_at ON jobs
    BEGIN UPDATE revision SET n = n + 1; END;
CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs BEGIN UPDATE revision SET n = n + 1; END;
