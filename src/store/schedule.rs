//! What the scheduler keeps in the store: each scheduled connection's next
//! run, and which scheduler leads.
//!
//! The next run is a column of the connection, next to the schedule it was
//! reckoned from, so the store stays the one truth: a connection disabled,
//! deleted or given another schedule is seen at the scheduler's next look,
//! and a scheduler that takes over (after a restart, or from another
//! daemon) goes on from the same times. Leadership is a PostgreSQL advisory
//! lock held by one open connection, so it ends when its holder dies; an
//! SQLite store is one daemon's, which always leads.

use super::{query_err, Pool, Result, Store};
use crate::model::{ConnectionStatus, Schedule};
use sqlx::Connection as _;

/// A connection with a schedule other than `manual`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Scheduled {
    pub id: i64,
    pub name: String,
    pub schedule: Schedule,
    pub timezone: String,
    pub status: ConnectionStatus,
    pub next_run_at: Option<i64>,
    /// The schedule `next_run_at` was reckoned from.
    pub next_run_schedule: Option<String>,
}

/// The key of the scheduler's advisory lock: `sluice` in ASCII.
const LEADER_KEY: i64 = 0x736c_7569_6365;

/// Being the scheduler that fires; given up when dropped.
pub enum Leadership {
    /// The store is an SQLite file, which one daemon uses.
    Sole,
    /// The advisory lock, held by this connection for as long as it is open.
    Postgres(sqlx::PgConnection),
}

impl Leadership {
    /// Whether this is still the leader: the lock's connection still works.
    pub async fn holds(&mut self) -> bool {
        match self {
            Leadership::Sole => true,
            Leadership::Postgres(conn) => conn.ping().await.is_ok(),
        }
    }
}

impl Store {
    /// Every connection with a schedule, its time zone applied.
    pub async fn scheduled_connections(&self) -> Result<Vec<Scheduled>> {
        let rows: Vec<Scheduled> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, schedule, timezone, status, next_run_at, next_run_schedule \
                            FROM connections WHERE schedule <> 'manual' ORDER BY id")
                .fetch_all(pool)
                .await
                .map_err(query_err("list scheduled connections"))?
        });
        Ok(rows
            .into_iter()
            .map(|mut r| {
                if let Schedule::Cron { timezone, .. } = &mut r.schedule {
                    timezone.clone_from(&r.timezone);
                }
                r
            })
            .collect())
    }

    /// Sets a connection's next run, if it is still `expected` (another
    /// scheduler may have moved it): whether it was.
    pub async fn set_next_run(
        &self,
        id: i64,
        expected: Option<i64>,
        next: Option<i64>,
        schedule: Option<&str>,
    ) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("UPDATE connections SET next_run_at = $1, next_run_schedule = $2 \
                                    WHERE id = $3 AND next_run_at IS NOT DISTINCT FROM $4")
                .bind(next)
                .bind(schedule)
                .bind(id)
                .bind(expected)
                .execute(pool)
                .await
                .map_err(query_err("save a connection's next run"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Becomes the scheduler that fires, unless another holds that now.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        let pool = match &self.pool {
            Pool::Sqlite(_) => return Ok(Some(Leadership::Sole)),
            Pool::Postgres(pool) => pool,
        };
        // A connection of its own, out of the pool: the lock is released
        // when it closes, not when it would go back to the pool.
        let mut conn = pool
            .acquire()
            .await
            .map_err(query_err("open a connection for the scheduler's lock"))?
            .detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(query_err("take the scheduler's lock"))?;
        Ok(got.then_some(Leadership::Postgres(conn)))
    }
}
