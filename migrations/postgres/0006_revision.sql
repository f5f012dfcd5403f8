-- A counter of the changes a listing can show: bumped in the same
-- statement as any change to a source, destination or connection, and
-- to a job's status or times. A daemon keeps a listing's answer until the
-- counter moves, whichever process or daemon made the change. Row
-- triggers: a statement that changes no row (a poll for work) moves nothing.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO revision (id, n) VALUES (1, 0);
CREATE FUNCTION bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE revision SET n = n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER sources_changed AFTER INSERT OR UPDATE OR DELETE ON sources
    FOR EACH ROW EXECUTE FUNCTION bump_revision();
CREATE TRIGGER destinations_changed AFTER INSERT OR UPDATE OR DELETE ON destinations
    FOR EACH ROW EXECUTE FUNCTION bump_revision();
CREATE TRIGGER connections_changed AFTER INSERT OR UPDATE OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION bump_revision();
CREATE TRIGGER jobs_changed AFTER INSERT OR DELETE OR UPDATE OF status, started_at, ended_at ON jobs
    FOR EACH ROW EXECUTE FUNCTION bump_revision();
