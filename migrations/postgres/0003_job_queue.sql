-- The daemon's job queue. A queued job is `pending` until a runner leases
-- it: the runner's owner (see crate::owner, with a runner id) goes in
-- `owner`, and it extends `lease_expires_at` with each heartbeat. A
-- running job whose lease has expired is taken over by another runner.
-- A job run by `sluice connection sync` in its own process has no lease.
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN heartbeat_at BIGINT;
-- Set by a cancel from anywhere; the job's runner sees it at its next
-- heartbeat.
ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
-- What was asked (streams, retry policy, options; JSON), so the runner
-- runs what the caller asked for.
ALTER TABLE jobs ADD COLUMN request TEXT;
CREATE INDEX jobs_by_lease ON jobs (status, lease_expires_at);
-- One queued or running job per connection, whoever starts it; this
-- replaces the index that counted only running ones.
CREATE UNIQUE INDEX one_active_job ON jobs (connection_id) WHERE status IN ('pending', 'running');
DROP INDEX one_running_job;

-- The time zone a connection's cron schedule runs in (IANA name); when
-- the scheduler will next queue a job of it (Unix milliseconds; NULL until
-- the scheduler first looks, and while the connection is inactive), and
-- the schedule that time was reckoned from (`cron:... @ZONE`), so that a
-- connection given another schedule is reckoned again at once.
ALTER TABLE connections ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE connections ADD COLUMN next_run_at BIGINT;
ALTER TABLE connections ADD COLUMN next_run_schedule TEXT;
