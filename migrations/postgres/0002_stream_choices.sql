-- The cursor and primary key the user chose per stream, over the source's
-- defaults (JSON objects: stream name -> field path, stream name -> list
-- of field paths), and the names of every stream the source had when the
-- connection last looked (JSON array), so that only a stream that is new
-- is reported as new.
ALTER TABLE connections ADD COLUMN cursors TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN primary_keys TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN known_streams TEXT NOT NULL DEFAULT '[]';
