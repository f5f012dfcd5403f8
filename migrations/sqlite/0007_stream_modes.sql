-- The sync mode, destination sync mode and selected fields the user chose
-- per stream, over the connection's modes and the whole schema (JSON
-- objects: stream name -> mode, stream name -> list of top-level field
-- names).
ALTER TABLE connections ADD COLUMN sync_modes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN destination_sync_modes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN selected_fields TEXT NOT NULL DEFAULT '{}';
