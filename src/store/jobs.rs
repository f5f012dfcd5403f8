//! Jobs and their attempts: what ran for a connection, who ran it, how
//! each attempt went.

use super::column::{json, JsonText};
use super::{is_unique_violation, new_uuid, now_ms, query_err, Result, Store, StoreError};
use crate::model::{
    AttemptStatus, Failure, FailureOrigin, FailureType, JobKind, JobStatus, JobTrigger,
    SchemaChange, StreamProgress,
};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    /// Its stable id (see [`super::new_uuid`]).
    pub uuid: String,
    pub connection_id: i64,
    #[sqlx(rename = "connection_name")]
    pub connection: String,
    pub kind: JobKind,
    #[sqlx(rename = "job_trigger")]
    pub trigger: JobTrigger,
    pub status: JobStatus,
    /// The process running it (see `crate::owner`).
    pub owner: Option<String>,
    /// The schema changes found before it ran.
    #[sqlx(try_from = "JsonText<Vec<SchemaChange>>")]
    pub changes: Vec<SchemaChange>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Records its attempts read, so far.
    #[sqlx(default)]
    pub records: i64,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub job_id: i64,
    pub number: i64,
    pub status: AttemptStatus,
    #[sqlx(try_from = "JsonText<Vec<StreamProgress>>")]
    pub stats: Vec<StreamProgress>,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
    pub failure: Option<Failure>,
    pub log_path: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub status: AttemptStatus,
    pub stats: Vec<StreamProgress>,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub connection_id: Option<i64>,
    pub status: Option<JobStatus>,
    /// At most this many; 0 for all.
    pub limit: i64,
}

const SELECT: &str = "SELECT j.*, c.name AS connection_name, \
     (SELECT CAST(COALESCE(SUM(a.records), 0) AS BIGINT) FROM attempts a WHERE a.job_id = j.id) AS records \
     FROM jobs j JOIN connections c ON c.id = j.connection_id";

impl Store {
    /// Records a job that starts now, run by `owner`; refused while the
    /// connection has a running job.
    pub async fn create_job(&self, connection_id: i64, kind: JobKind, owner: &str) -> Result<Job> {
        let now = now_ms();
        let id: std::result::Result<i64, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query_scalar("INSERT INTO jobs (connection_id, kind, status, owner, created_at, started_at, uuid) \
                                VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id")
                .bind(connection_id)
                .bind(kind)
                .bind(JobStatus::Running)
                .bind(owner)
                .bind(now)
                .bind(new_uuid())
                .fetch_one(pool)
                .await
        });
        let id = match id {
            Ok(id) => id,
            Err(e) if is_unique_violation(&e) => {
                let connection: Option<String> = on_pool!(self, pool => {
                    sqlx::query_scalar("SELECT name FROM connections WHERE id = $1")
                        .bind(connection_id)
                        .fetch_optional(pool)
                        .await
                        .map_err(query_err("read a connection"))?
                });
                return Err(StoreError::JobRunning {
                    connection: connection.unwrap_or_else(|| connection_id.to_string()),
                });
            }
            Err(source) => {
                return Err(StoreError::Query {
                    action: "create a job",
                    source,
                })
            }
        };
        self.get_job(id).await?.ok_or_else(|| StoreError::Corrupt {
            what: "job",
            message: format!("job {id} vanished right after it was created"),
        })
    }

    /// Ends a job whose process is gone, with its running attempts, giving
    /// `message` as the reason.
    pub async fn abandon_job(&self, id: i64, message: &str) -> Result<()> {
        let failure = Failure::new(FailureOrigin::Platform, FailureType::SystemError, message);
        on_pool!(self, pool => {
            sqlx::query("UPDATE attempts SET status = $1, failure = $2, ended_at = $3 \
                         WHERE job_id = $4 AND status = $5")
                .bind(AttemptStatus::Failed)
                .bind(&failure)
                .bind(now_ms())
                .bind(id)
                .bind(AttemptStatus::Running)
                .execute(pool)
                .await
                .map_err(query_err("end an abandoned job's attempts"))?;
        });
        self.finish_job(id, JobStatus::Failed).await
    }

    pub async fn get_job(&self, id: i64) -> Result<Option<Job>> {
        let sql = format!("{SELECT} WHERE j.id = $1");
        on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
                .map_err(query_err("read a job"))
        })
    }

    /// The number of the job with this stable id.
    pub async fn job_id_of(&self, uuid: &str) -> Result<Option<i64>> {
        on_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM jobs WHERE uuid = $1")
                .bind(uuid)
                .fetch_optional(pool)
                .await
                .map_err(query_err("find a job by its id"))
        })
    }

    /// Newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let sql = format!(
            "{SELECT} WHERE ($1 IS NULL OR j.connection_id = $1) \
             AND ($2 IS NULL OR j.status = $2) ORDER BY j.id DESC LIMIT $3"
        );
        let limit = if filter.limit <= 0 {
            i64::MAX
        } else {
            filter.limit
        };
        on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(filter.connection_id)
                .bind(filter.status)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(query_err("list jobs"))
        })
    }

    /// The newest job of each connection that has one, by connection id.
    pub(super) async fn last_jobs(&self) -> Result<HashMap<i64, Job>> {
        let sql =
            format!("{SELECT} WHERE j.id IN (SELECT MAX(id) FROM jobs GROUP BY connection_id)");
        let jobs: Vec<Job> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .fetch_all(pool)
                .await
                .map_err(query_err("list the last jobs"))?
        });
        Ok(jobs.into_iter().map(|j| (j.connection_id, j)).collect())
    }

    pub async fn set_job_changes(&self, id: i64, changes: &[SchemaChange]) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE jobs SET changes = $1 WHERE id = $2")
                .bind(json(&changes))
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("record a job's schema changes"))?;
        });
        Ok(())
    }

    pub async fn finish_job(&self, id: i64, status: JobStatus) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE jobs SET status = $1, ended_at = $2 WHERE id = $3")
                .bind(status)
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("finish a job"))?;
        });
        Ok(())
    }

    pub async fn start_attempt(&self, job_id: i64, number: i64, log_path: &Path) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("INSERT INTO attempts (job_id, number, status, log_path, started_at) \
                         VALUES ($1, $2, $3, $4, $5)")
                .bind(job_id)
                .bind(number)
                .bind(AttemptStatus::Running)
                .bind(log_path.to_string_lossy().into_owned())
                .bind(now_ms())
                .execute(pool)
                .await
                .map_err(query_err("start an attempt"))?;
        });
        Ok(())
    }

    pub async fn finish_attempt(&self, job_id: i64, number: i64, end: &AttemptEnd) -> Result<()> {
        const SQL: &str = "UPDATE attempts SET status = $1, stats = $2, records = $3, bytes = $4, \
            records_committed = $5, failure = $6, ended_at = $7 WHERE job_id = $8 AND number = $9";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(end.status)
                .bind(json(&end.stats))
                .bind(end.records)
                .bind(end.bytes)
                .bind(end.records_committed)
                .bind(&end.failure)
                .bind(now_ms())
                .bind(job_id)
                .bind(number)
                .execute(pool)
                .await
                .map_err(query_err("finish an attempt"))?;
        });
        Ok(())
    }

    /// Saves a running attempt's counts so far (per stream, and their
    /// sums); an attempt that has ended keeps the counts it ended with.
    pub async fn save_attempt_progress(
        &self,
        job_id: i64,
        number: i64,
        stats: &[StreamProgress],
    ) -> Result<()> {
        const SQL: &str = "UPDATE attempts SET stats = $1, records = $2, bytes = $3, \
            records_committed = $4 WHERE job_id = $5 AND number = $6 AND status = $7";
        let sum = |f: fn(&StreamProgress) -> u64| stats.iter().map(f).sum::<u64>() as i64;
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(json(&stats))
                .bind(sum(|s| s.records))
                .bind(sum(|s| s.bytes))
                .bind(sum(|s| s.records_committed))
                .bind(job_id)
                .bind(number)
                .bind(AttemptStatus::Running)
                .execute(pool)
                .await
                .map_err(query_err("save an attempt's progress"))?;
        });
        Ok(())
    }

    pub async fn list_attempts(&self, job_id: i64) -> Result<Vec<Attempt>> {
        on_pool!(self, pool => {
            sqlx::query_as("SELECT * FROM attempts WHERE job_id = $1 ORDER BY number")
                .bind(job_id)
                .fetch_all(pool)
                .await
                .map_err(query_err("list attempts"))
        })
    }
}

/// Ids as the list an SQL `IN (...)` takes (numbers: nothing to quote).
fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Jobs that ended, the newest of each connection excepted: what
/// retention may delete.
const ENDED_NOT_NEWEST: &str = "status IN ('succeeded', 'failed', 'cancelled') \
     AND COALESCE(ended_at, created_at) < $1 \
     AND id NOT IN (SELECT MAX(id) FROM jobs GROUP BY connection_id)";

impl Store {
    /// How many of the connection's newest jobs failed in a row, counting
    /// at most `up_to`; cancelled jobs are passed over.
    pub async fn failures_in_a_row(&self, connection_id: i64, up_to: i64) -> Result<i64> {
        let statuses: Vec<JobStatus> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT status FROM jobs WHERE connection_id = $1 \
                                AND status IN ($2, $3) ORDER BY id DESC LIMIT $4")
                .bind(connection_id)
                .bind(JobStatus::Succeeded)
                .bind(JobStatus::Failed)
                .bind(up_to)
                .fetch_all(pool)
                .await
                .map_err(query_err("count a connection's failed jobs"))?
        });
        Ok(statuses
            .iter()
            .take_while(|s| **s == JobStatus::Failed)
            .count() as i64)
    }

    /// Deletes the jobs (with their attempts) that ended before `before`
    /// (Unix ms), keeping the newest job of each connection: their ids,
    /// and the log files their attempts had.
    pub async fn delete_old_jobs(&self, before: i64) -> Result<(Vec<i64>, Vec<String>)> {
        let deleted: (Vec<i64>, Vec<String>) = on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(query_err("begin a transaction"))?;
            let ids: Vec<i64> = sqlx::query_scalar(&format!("SELECT id FROM jobs WHERE {ENDED_NOT_NEWEST} ORDER BY id"))
                .bind(before)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_err("find old jobs"))?;
            let mut logs: Vec<String> = Vec::new();
            for chunk in ids.chunks(500) {
                let list = id_list(chunk);
                let paths: Vec<Option<String>> = sqlx::query_scalar(&format!(
                    "SELECT log_path FROM attempts WHERE job_id IN ({list})"
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(query_err("find old attempts' logs"))?;
                logs.extend(paths.into_iter().flatten());
                sqlx::query(&format!("DELETE FROM attempts WHERE job_id IN ({list})"))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("delete old attempts"))?;
                sqlx::query(&format!("DELETE FROM jobs WHERE id IN ({list})"))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("delete old jobs"))?;
            }
            tx.commit().await.map_err(query_err("commit deleting old jobs"))?;
            (ids, logs)
        });
        Ok(deleted)
    }

    /// Which of `ids` are jobs in the store.
    pub async fn existing_jobs(&self, ids: &[i64]) -> Result<Vec<i64>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let list = id_list(chunk);
            let some: Vec<i64> = on_pool!(self, pool => {
                sqlx::query_scalar(&format!("SELECT id FROM jobs WHERE id IN ({list})"))
                    .fetch_all(pool)
                    .await
                    .map_err(query_err("find jobs"))?
            });
            found.extend(some);
        }
        Ok(found)
    }
}
