-- What started a job: `manual` (a person or a script, through the CLI or
-- the API) or `scheduled` (the daemon's scheduler). Jobs made before are
-- taken as manual.
ALTER TABLE jobs ADD COLUMN job_trigger TEXT NOT NULL DEFAULT 'manual';
