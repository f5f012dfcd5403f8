//! The job queue: jobs waiting (`pending`) until a runner leases one, the
//! lease each running job's runner keeps alive with heartbeats, and cancels
//! asked for from anywhere.
//!
//! A lease is an owner and an expiry. Whoever holds an unexpired lease runs
//! the job; a running job whose lease expired (its runner was killed, or
//! lost the database) is claimed again like a queued one. On PostgreSQL a
//! claim locks the row it takes with `FOR UPDATE SKIP LOCKED`, so runners
//! of several daemons never wait on each other or take one job twice; on
//! SQLite the claim is one conditional UPDATE, which SQLite runs as one
//! write transaction, so two runners cannot both win it either. A job run
//! in its own process by `sluice connection sync` has no lease and is never
//! claimed. This module never decides how long a lease is or what happens
//! to a claimed job.

use super::jobs::Job;
use super::{is_unique_violation, now_ms, query_err, Result, Store, StoreError};
use crate::model::{AttemptStatus, Failure, JobKind, JobStatus, JobTrigger};
use std::time::Duration;

/// What a runner learns from a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is extended; go on.
    Held,
    /// The lease is extended, and someone asked to cancel the job.
    CancelRequested,
    /// The job is no longer this runner's (it ended, or another runner
    /// took it over after the lease expired): stop without recording.
    Lost,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRequest {
    /// The job was queued: it is cancelled now.
    Dequeued,
    /// The job runs under a lease: its runner stops it at its next
    /// heartbeat.
    Flagged,
    /// The job runs in a process of its own (`sluice connection sync`),
    /// which reads no flag.
    Unleased,
    /// The job had already ended.
    Ended(JobStatus),
    NotFound,
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Store {
    /// Queues a job; refused while the connection has one queued or running.
    /// `request` is what the caller asked for, as JSON text.
    pub async fn enqueue_job(
        &self,
        connection_id: i64,
        kind: JobKind,
        trigger: JobTrigger,
        request: &str,
    ) -> Result<Job> {
        let id: std::result::Result<i64, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query_scalar("INSERT INTO jobs (connection_id, kind, status, request, created_at, uuid, job_trigger) \
                                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                .bind(connection_id)
                .bind(kind)
                .bind(JobStatus::Pending)
                .bind(request)
                .bind(now_ms())
                .bind(super::new_uuid())
                .bind(trigger)
                .fetch_one(pool)
                .await
        });
        let id = match id {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::JobRunning {
                    connection: self.connection_name(connection_id).await?,
                })
            }
            Err(source) => {
                return Err(StoreError::Query {
                    action: "queue a job",
                    source,
                })
            }
        };
        self.get_job(id).await?.ok_or_else(|| StoreError::Corrupt {
            what: "job",
            message: format!("job {id} vanished right after it was queued"),
        })
    }

    pub(super) async fn connection_name(&self, connection_id: i64) -> Result<String> {
        let name: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT name FROM connections WHERE id = $1")
                .bind(connection_id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read a connection"))?
        });
        Ok(name.unwrap_or_else(|| connection_id.to_string()))
    }

    /// Leases the oldest job that is queued, or running under a lease that
    /// has expired, to `owner` for `lease`. `None` when there is none.
    pub async fn claim_job(&self, owner: &str, lease: Duration) -> Result<Option<Job>> {
        let now = now_ms();
        // The inner SELECT picks; the outer WHERE checks again, so the
        // UPDATE takes the row only if it is still claimable.
        const CLAIMABLE: &str = "(status = 'pending' OR (status = 'running' \
             AND lease_expires_at IS NOT NULL AND lease_expires_at < $3))";
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', owner = $1, lease_expires_at = $2, \
             heartbeat_at = $3, started_at = COALESCE(started_at, $3) \
             WHERE id = (SELECT id FROM jobs WHERE {CLAIMABLE} ORDER BY id LIMIT 1 {lock}) \
             AND {CLAIMABLE} RETURNING id"
        );
        let id: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(&sql)
                .bind(owner)
                .bind(now + millis(lease))
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(query_err("claim a job"))?
        });
        match id {
            Some(id) => self.get_job(id).await,
            None => Ok(None),
        }
    }

    /// Extends `owner`'s lease on a job by `lease` from now.
    pub async fn heartbeat_job(&self, id: i64, owner: &str, lease: Duration) -> Result<Heartbeat> {
        let now = now_ms();
        let cancel: Option<bool> = on_pool!(self, pool => {
            sqlx::query_scalar("UPDATE jobs SET heartbeat_at = $1, lease_expires_at = $2 \
                                WHERE id = $3 AND owner = $4 AND status = 'running' \
                                RETURNING cancel_requested")
                .bind(now)
                .bind(now + millis(lease))
                .bind(id)
                .bind(owner)
                .fetch_optional(pool)
                .await
                .map_err(query_err("extend a job's lease"))?
        });
        Ok(match cancel {
            None => Heartbeat::Lost,
            Some(true) => Heartbeat::CancelRequested,
            Some(false) => Heartbeat::Held,
        })
    }

    /// Ends a leased job, if `owner` still holds it; whether it did.
    pub async fn finish_leased_job(&self, id: i64, owner: &str, status: JobStatus) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("UPDATE jobs SET status = $1, ended_at = $2, lease_expires_at = NULL \
                                    WHERE id = $3 AND owner = $4 AND status = 'running'")
                .bind(status)
                .bind(now_ms())
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await
                .map_err(query_err("finish a job"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Puts a leased job back in the queue (its runner is stopping), if
    /// `owner` still holds it and nobody asked to cancel it.
    pub async fn requeue_job(&self, id: i64, owner: &str) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("UPDATE jobs SET status = 'pending', owner = NULL, lease_expires_at = NULL \
                                    WHERE id = $1 AND owner = $2 AND status = 'running' \
                                    AND NOT cancel_requested")
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await
                .map_err(query_err("put a job back in the queue"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Ends a job's attempts that are still marked running (their runner
    /// is gone) with `failure`; how many.
    pub async fn fail_running_attempts(&self, job_id: i64, failure: &Failure) -> Result<u64> {
        on_pool!(self, pool => {
            let done = sqlx::query("UPDATE attempts SET status = $1, failure = $2, ended_at = $3 \
                                    WHERE job_id = $4 AND status = $5")
                .bind(AttemptStatus::Failed)
                .bind(failure)
                .bind(now_ms())
                .bind(job_id)
                .bind(AttemptStatus::Running)
                .execute(pool)
                .await
                .map_err(query_err("end a job's abandoned attempts"))?;
            Ok(done.rows_affected())
        })
    }

    /// Asks for a job to be cancelled: a queued one at once, a leased one
    /// by a flag its runner reads.
    pub async fn request_cancel(&self, id: i64) -> Result<CancelRequest> {
        // A job stopping its runner goes back from running to pending:
        // then the first update may have missed it, so look again.
        for _ in 0..3 {
            let dequeued = on_pool!(self, pool => {
                sqlx::query("UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE, ended_at = $1 \
                             WHERE id = $2 AND status = 'pending'")
                    .bind(now_ms())
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(query_err("cancel a job"))?
                    .rows_affected()
            });
            if dequeued > 0 {
                return Ok(CancelRequest::Dequeued);
            }
            let flagged = on_pool!(self, pool => {
                sqlx::query("UPDATE jobs SET cancel_requested = TRUE \
                             WHERE id = $1 AND status = 'running' AND lease_expires_at IS NOT NULL")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(query_err("cancel a job"))?
                    .rows_affected()
            });
            if flagged > 0 {
                return Ok(CancelRequest::Flagged);
            }
            match self.get_job(id).await? {
                None => return Ok(CancelRequest::NotFound),
                Some(j) if j.status == JobStatus::Pending => continue,
                Some(j) if j.status == JobStatus::Running => return Ok(CancelRequest::Unleased),
                Some(j) => return Ok(CancelRequest::Ended(j.status)),
            }
        }
        Err(StoreError::Corrupt {
            what: "job",
            message: format!("job {id} kept changing while it was being cancelled"),
        })
    }

    /// Whether someone asked to cancel a job.
    pub async fn cancel_requested(&self, id: i64) -> Result<bool> {
        let flag: Option<bool> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT cancel_requested FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read a job"))?
        });
        Ok(flag.unwrap_or(false))
    }

    /// The request a job was queued with (JSON text), if it has one.
    pub async fn job_request(&self, id: i64) -> Result<Option<String>> {
        let request: Option<Option<String>> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT request FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read a job"))?
        });
        Ok(request.flatten())
    }
}
