//! The job store: sources, destinations, connections, jobs, attempts and
//! per-connection state, in an SQLite file (the default) or PostgreSQL.
//!
//! Queries are built at run time (`sqlx::query`, never the compile-time
//! macros), so the crate builds with no database. Each query is written once
//! with `$N` placeholders, which both backends read, and run on whichever
//! pool the store holds ([`on_pool!`]). Rows are read with
//! `#[derive(sqlx::FromRow)]`; words such as statuses are TEXT columns
//! holding their one string form ([`column`]). Migrations for both
//! backends are embedded and run when the store is opened. This module
//! never decides anything about connectors or secrets: it keeps what it is
//! given.
//!
//! `mod.rs` holds the pool, the migrations and the migration lock; each
//! kind of row has its own file.

mod url;

pub use actors::{Actor, ActorFields};
pub use column::JsonText;
pub use connections::{Connection, ConnectionFields, ConnectionSummary};
pub use jobs::{Attempt, AttemptEnd, Job, JobFilter};
pub use metrics::{ConnectionTotals, Figures};
pub use queue::{CancelRequest, Heartbeat};
pub use schedule::{Leadership, Scheduled};
pub use setup::{Change, ConnectionWrite, SetupChanges};
pub use state::StoredState;
pub use url::{mask_url, Location};

pub use crate::model::ActorKind;

use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the job store at {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the job store's directory {}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate the job store at {location}: {source}")]
    Migrate {
        location: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("connection `{connection}` already has a running job")]
    JobRunning { connection: String },
    #[error("{kind} `{name}` already exists")]
    Exists { kind: &'static str, name: String },
    #[error("{kind} `{name}` is used by connection(s): {users}")]
    InUse {
        kind: &'static str,
        name: String,
        users: String,
    },
    #[error("the job store could not {action}: {source}")]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the job store holds a bad {what}: {message}")]
    Corrupt { what: &'static str, message: String },
}

type Result<T> = std::result::Result<T, StoreError>;

fn query_err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

// The row modules come after `on_pool!`, which they use.
mod actors;
mod column;
mod connections;
mod jobs;
mod metrics;
mod queue;
mod schedule;
mod setup;
mod state;

/// An open job store.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    location: Location,
}

/// Which database a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One applied migration.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    pub installed_on: String,
}

/// A new stable id for a source, destination, connection or job: a v4
/// UUID in the lowercase hyphenated form the store keeps.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `text` as the store keeps an id, if it is a UUID in any of its forms
/// (hyphenated or not, any case, braced, `urn:uuid:`).
pub fn parse_uuid(text: &str) -> Option<String> {
    uuid::Uuid::try_parse(text).ok().map(|u| u.to_string())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating it if needed) and migrates the store.
    pub async fn open(location: &Location) -> Result<Store> {
        let store = Store::connect(location).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the store without migrating it.
    pub async fn connect(location: &Location) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            location: location.to_string(),
            source,
        };
        let pool = match location {
            Location::Sqlite(path) => {
                create_private_file(path)?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(BUSY_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                Pool::Sqlite(pool)
            }
            Location::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(open_err)?;
                Pool::Postgres(pool)
            }
        };
        Ok(Store {
            pool,
            location: location.clone(),
        })
    }

    /// Applies the migrations this binary has and the store lacks.
    pub async fn migrate(&self) -> Result<()> {
        let migrate_err = |source| StoreError::Migrate {
            location: self.location.to_string(),
            source,
        };
        match &self.pool {
            Pool::Sqlite(pool) => {
                // sqlx takes no lock on SQLite: two processes opening a new
                // store at once would both create the tables. A file lock
                // beside the database makes them take turns.
                let Location::Sqlite(path) = &self.location else {
                    unreachable!("an SQLite pool has an SQLite location")
                };
                let _lock = FileLock::acquire(&path.with_extension("migrate.lock"))
                    .await
                    .map_err(|source| StoreError::Dir {
                        dir: path.clone(),
                        source,
                    })?;
                SQLITE_MIGRATIONS.run(pool).await.map_err(migrate_err)
            }
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await.map_err(migrate_err),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The migrations applied to this store, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        const SQL: &str =
            "SELECT version, description, CAST(installed_on AS TEXT) AS installed_on \
             FROM _sqlx_migrations WHERE success ORDER BY version";
        on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .fetch_all(pool)
                .await
                .map_err(query_err("list its migrations"))
        })
    }

    /// The migrations this binary knows, as (version, description).
    pub fn known_migrations(&self) -> Vec<(i64, String)> {
        let m = match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Creates the SQLite file 0600 in a 0700 directory before SQLite does.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsutil::ensure_private_dir(dir).map_err(|source| StoreError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::Dir {
            dir: path.to_path_buf(),
            source,
        })
}

/// An exclusive advisory lock on a file, released when dropped.
struct FileLock(std::fs::File);

impl FileLock {
    async fn acquire(path: &Path) -> std::io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path)?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(FileLock(f))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking a descriptor we own.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Where the default SQLite store lives in a data dir.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("sluice.db")
}

#[cfg(test)]
mod tests;
