//! The job store: sources, destinations, connections, jobs, attempts and
//! per-connection state, in an SQLite file (the default) or PostgreSQL.
//!
//! Queries are built at run time (`sqlx::query`, never the compile-time
//! macros), so the crate builds with no database. Each query is written once
//! with `$N` placeholders, which both backends read, and run on whichever
//! pool the store holds ([`on_pool!`]). Migrations for both backends are
//! embedded and run when the store is opened. This module never decides
//! anything about connectors or secrets: it keeps what it is given.

mod url;

pub use url::{mask_url, Location};

use serde::Serialize;
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
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
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

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
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    pub installed_on: String,
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
        let rows = on_pool!(self, pool => {
            sqlx::query(SQL).fetch_all(pool).await.map_err(query_err("list its migrations"))?
                .iter()
                .map(|r| Ok(AppliedMigration {
                    version: r.try_get("version")?,
                    description: r.try_get("description")?,
                    installed_on: r.try_get("installed_on")?,
                }))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                .map_err(query_err("read its migrations"))?
        });
        Ok(rows)
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

// ---------------------------------------------------------------------------
// Sources and destinations

/// Sources and destinations are kept alike, in two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Source,
    Destination,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Source => "source",
            ActorKind::Destination => "destination",
        }
    }

    fn table(self) -> &'static str {
        match self {
            ActorKind::Source => "sources",
            ActorKind::Destination => "destinations",
        }
    }
}

/// A stored source or destination.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub kind: ActorKind,
    pub name: String,
    pub connector: String,
    pub config: Value,
    /// JSON Pointers of the config's secret fields.
    pub secret_paths: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a source or destination is made of.
#[derive(Debug, Clone)]
pub struct ActorFields {
    pub name: String,
    pub connector: String,
    pub config: Value,
    pub secret_paths: Vec<String>,
}

fn json_text(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    })
}

fn actor_from<R: Row>(kind: ActorKind, r: &R) -> Result<Actor>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let get = |e: sqlx::Error| StoreError::Query {
        action: "read a source or destination",
        source: e,
    };
    let config: String = r.try_get("config").map_err(get)?;
    let secrets: String = r.try_get("secret_paths").map_err(get)?;
    Ok(Actor {
        id: r.try_get("id").map_err(get)?,
        kind,
        name: r.try_get("name").map_err(get)?,
        connector: r.try_get("connector").map_err(get)?,
        config: parse_json("config", &config)?,
        secret_paths: parse_json("list of secret fields", &secrets)?,
        created_at: r.try_get("created_at").map_err(get)?,
        updated_at: r.try_get("updated_at").map_err(get)?,
    })
}

impl Store {
    pub async fn create_actor(&self, kind: ActorKind, f: &ActorFields) -> Result<Actor> {
        let sql = format!(
            "INSERT INTO {} (name, connector, config, secret_paths, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING *",
            kind.table()
        );
        let now = now_ms();
        let result = on_pool!(self, pool => {
            match sqlx::query(&sql)
                .bind(&f.name)
                .bind(&f.connector)
                .bind(json_text(&f.config))
                .bind(json_text(&f.secret_paths))
                .bind(now)
                .fetch_one(pool)
                .await
            {
                Ok(row) => actor_from(kind, &row),
                Err(source) if is_unique_violation(&source) => Err(StoreError::Exists {
                    kind: kind.as_str(),
                    name: f.name.clone(),
                }),
                Err(source) => Err(StoreError::Query {
                    action: "create a source or destination",
                    source,
                }),
            }
        });
        result
    }

    pub async fn get_actor(&self, kind: ActorKind, name: &str) -> Result<Option<Actor>> {
        let sql = format!("SELECT * FROM {} WHERE name = $1", kind.table());
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(name).fetch_optional(pool).await
                .map_err(query_err("read a source or destination"))?;
            row.map(|r| actor_from(kind, &r)).transpose()
        })
    }

    pub async fn get_actor_by_id(&self, kind: ActorKind, id: i64) -> Result<Actor> {
        let sql = format!("SELECT * FROM {} WHERE id = $1", kind.table());
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(id).fetch_one(pool).await
                .map_err(query_err("read a source or destination"))?;
            actor_from(kind, &row)
        })
    }

    pub async fn list_actors(&self, kind: ActorKind) -> Result<Vec<Actor>> {
        let sql = format!("SELECT * FROM {} ORDER BY name", kind.table());
        on_pool!(self, pool => {
            sqlx::query(&sql).fetch_all(pool).await
                .map_err(query_err("list sources or destinations"))?
                .iter()
                .map(|r| actor_from(kind, r))
                .collect()
        })
    }

    /// Replaces the connector, config and secret fields of `name`.
    pub async fn update_actor(&self, kind: ActorKind, f: &ActorFields) -> Result<Option<Actor>> {
        let sql = format!(
            "UPDATE {} SET connector = $1, config = $2, secret_paths = $3, updated_at = $4 \
             WHERE name = $5 RETURNING *",
            kind.table()
        );
        on_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(&f.connector)
                .bind(json_text(&f.config))
                .bind(json_text(&f.secret_paths))
                .bind(now_ms())
                .bind(&f.name)
                .fetch_optional(pool)
                .await
                .map_err(query_err("update a source or destination"))?;
            row.map(|r| actor_from(kind, &r)).transpose()
        })
    }

    /// Deletes `name`; refuses while a connection uses it. Whether it existed.
    pub async fn delete_actor(&self, kind: ActorKind, name: &str) -> Result<bool> {
        let column = match kind {
            ActorKind::Source => "source_id",
            ActorKind::Destination => "destination_id",
        };
        let users_sql = format!(
            "SELECT c.name FROM connections c JOIN {} a ON c.{column} = a.id \
             WHERE a.name = $1 ORDER BY c.name",
            kind.table()
        );
        let delete_sql = format!("DELETE FROM {} WHERE name = $1", kind.table());
        on_pool!(self, pool => {
            let users: Vec<String> = sqlx::query_scalar(&users_sql).bind(name).fetch_all(pool).await
                .map_err(query_err("find the connections of a source or destination"))?;
            if !users.is_empty() {
                return Err(StoreError::InUse { kind: kind.as_str(), name: name.to_string(), users: users.join(", ") });
            }
            let done = sqlx::query(&delete_sql).bind(name).execute(pool).await
                .map_err(query_err("delete a source or destination"))?;
            Ok(done.rows_affected() > 0)
        })
    }
}

// ---------------------------------------------------------------------------
// Connections

/// A stored connection, with the names of its source and destination.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub id: i64,
    pub name: String,
    pub source_id: i64,
    pub source: String,
    pub destination_id: i64,
    pub destination: String,
    pub streams: Vec<String>,
    pub sync_mode: Option<String>,
    pub destination_sync_mode: Option<String>,
    /// The configured catalog (JSON).
    pub catalog: Value,
    pub schedule: String,
    pub namespace: String,
    pub prefix: String,
    pub status: String,
    pub schema_change: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a connection is made of.
#[derive(Debug, Clone)]
pub struct ConnectionFields {
    pub name: String,
    pub source_id: i64,
    pub destination_id: i64,
    pub streams: Vec<String>,
    pub sync_mode: Option<String>,
    pub destination_sync_mode: Option<String>,
    pub catalog: Value,
    pub schedule: String,
    pub namespace: String,
    pub prefix: String,
    pub status: String,
    pub schema_change: String,
}

/// A connection with its last job, for listings.
#[derive(Debug, Clone)]
pub struct ConnectionSummary {
    pub connection: Connection,
    pub last_job: Option<Job>,
}

const CONNECTION_SELECT: &str = "SELECT c.*, s.name AS source_name, d.name AS destination_name \
     FROM connections c JOIN sources s ON s.id = c.source_id \
     JOIN destinations d ON d.id = c.destination_id";

fn connection_from<R: Row>(r: &R) -> Result<Connection>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let get = |e: sqlx::Error| StoreError::Query {
        action: "read a connection",
        source: e,
    };
    let streams: String = r.try_get("streams").map_err(get)?;
    let catalog: String = r.try_get("catalog").map_err(get)?;
    Ok(Connection {
        id: r.try_get("id").map_err(get)?,
        name: r.try_get("name").map_err(get)?,
        source_id: r.try_get("source_id").map_err(get)?,
        source: r.try_get("source_name").map_err(get)?,
        destination_id: r.try_get("destination_id").map_err(get)?,
        destination: r.try_get("destination_name").map_err(get)?,
        streams: parse_json("stream list", &streams)?,
        sync_mode: r.try_get("sync_mode").map_err(get)?,
        destination_sync_mode: r.try_get("destination_sync_mode").map_err(get)?,
        catalog: parse_json("catalog", &catalog)?,
        schedule: r.try_get("schedule").map_err(get)?,
        namespace: r.try_get("namespace").map_err(get)?,
        prefix: r.try_get("prefix").map_err(get)?,
        status: r.try_get("status").map_err(get)?,
        schema_change: r.try_get("schema_change").map_err(get)?,
        created_at: r.try_get("created_at").map_err(get)?,
        updated_at: r.try_get("updated_at").map_err(get)?,
    })
}

impl Store {
    pub async fn create_connection(&self, f: &ConnectionFields) -> Result<Connection> {
        const SQL: &str = "INSERT INTO connections (name, source_id, destination_id, streams, \
            sync_mode, destination_sync_mode, catalog, schedule, namespace, prefix, status, \
            schema_change, created_at, updated_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";
        let now = now_ms();
        let inserted = on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&f.name)
                .bind(f.source_id)
                .bind(f.destination_id)
                .bind(json_text(&f.streams))
                .bind(&f.sync_mode)
                .bind(&f.destination_sync_mode)
                .bind(json_text(&f.catalog))
                .bind(&f.schedule)
                .bind(&f.namespace)
                .bind(&f.prefix)
                .bind(&f.status)
                .bind(&f.schema_change)
                .bind(now)
                .execute(pool)
                .await
                .map(drop)
        });
        inserted.map_err(|source| {
            if is_unique_violation(&source) {
                StoreError::Exists {
                    kind: "connection",
                    name: f.name.clone(),
                }
            } else {
                StoreError::Query {
                    action: "create a connection",
                    source,
                }
            }
        })?;
        self.get_connection(&f.name)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "connection",
                message: format!("`{}` vanished right after it was created", f.name),
            })
    }

    pub async fn get_connection(&self, name: &str) -> Result<Option<Connection>> {
        let sql = format!("{CONNECTION_SELECT} WHERE c.name = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(name).fetch_optional(pool).await
                .map_err(query_err("read a connection"))?;
            row.map(|r| connection_from(&r)).transpose()
        })
    }

    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>> {
        let sql = format!("{CONNECTION_SELECT} ORDER BY c.name");
        let connections: Vec<Connection> = on_pool!(self, pool => {
            sqlx::query(&sql).fetch_all(pool).await
                .map_err(query_err("list connections"))?
                .iter()
                .map(connection_from)
                .collect::<Result<Vec<_>>>()?
        });
        let mut out = Vec::with_capacity(connections.len());
        for c in connections {
            let last_job = self
                .list_jobs(&JobFilter {
                    connection_id: Some(c.id),
                    status: None,
                    limit: 1,
                })
                .await?
                .into_iter()
                .next();
            out.push(ConnectionSummary {
                connection: c,
                last_job,
            });
        }
        Ok(out)
    }

    /// Replaces everything but the name and the timestamps of creation.
    pub async fn update_connection(&self, f: &ConnectionFields) -> Result<Option<Connection>> {
        const SQL: &str = "UPDATE connections SET source_id = $1, destination_id = $2, \
            streams = $3, sync_mode = $4, destination_sync_mode = $5, catalog = $6, \
            schedule = $7, namespace = $8, prefix = $9, status = $10, schema_change = $11, \
            updated_at = $12 WHERE name = $13";
        let n = on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(f.source_id)
                .bind(f.destination_id)
                .bind(json_text(&f.streams))
                .bind(&f.sync_mode)
                .bind(&f.destination_sync_mode)
                .bind(json_text(&f.catalog))
                .bind(&f.schedule)
                .bind(&f.namespace)
                .bind(&f.prefix)
                .bind(&f.status)
                .bind(&f.schema_change)
                .bind(now_ms())
                .bind(&f.name)
                .execute(pool)
                .await
                .map_err(query_err("update a connection"))?
                .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        self.get_connection(&f.name).await
    }

    pub async fn set_connection_catalog(&self, id: i64, catalog: &Value) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE connections SET catalog = $1, updated_at = $2 WHERE id = $3")
                .bind(json_text(catalog))
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("save a connection's catalog"))?;
        });
        Ok(())
    }

    pub async fn set_connection_status(&self, name: &str, status: &str) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("UPDATE connections SET status = $1, updated_at = $2 WHERE name = $3")
                .bind(status)
                .bind(now_ms())
                .bind(name)
                .execute(pool)
                .await
                .map_err(query_err("change a connection's status"))?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Deletes a connection with its jobs, attempts and state.
    pub async fn delete_connection(&self, name: &str) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM connections WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await
                .map_err(query_err("delete a connection"))?;
            Ok(done.rows_affected() > 0)
        })
    }
}

// ---------------------------------------------------------------------------
// Jobs and attempts

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub connection_id: i64,
    pub connection: String,
    pub kind: String,
    pub status: String,
    /// HOST:PID of the process running it.
    pub owner: Option<String>,
    pub changes: Value,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub job_id: i64,
    pub number: i64,
    pub status: String,
    pub stats: Value,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
    pub failure: Option<Value>,
    pub log_path: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub status: String,
    pub stats: Value,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
    pub failure: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub connection_id: Option<i64>,
    pub status: Option<String>,
    pub limit: i64,
}

const JOB_SELECT: &str = "SELECT j.*, c.name AS connection_name FROM jobs j \
     JOIN connections c ON c.id = j.connection_id";

fn job_from<R: Row>(r: &R) -> Result<Job>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let get = |e: sqlx::Error| StoreError::Query {
        action: "read a job",
        source: e,
    };
    let changes: String = r.try_get("changes").map_err(get)?;
    Ok(Job {
        id: r.try_get("id").map_err(get)?,
        connection_id: r.try_get("connection_id").map_err(get)?,
        connection: r.try_get("connection_name").map_err(get)?,
        kind: r.try_get("kind").map_err(get)?,
        status: r.try_get("status").map_err(get)?,
        owner: r.try_get("owner").map_err(get)?,
        changes: parse_json("list of schema changes", &changes)?,
        created_at: r.try_get("created_at").map_err(get)?,
        started_at: r.try_get("started_at").map_err(get)?,
        ended_at: r.try_get("ended_at").map_err(get)?,
    })
}

fn attempt_from<R: Row>(r: &R) -> Result<Attempt>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let get = |e: sqlx::Error| StoreError::Query {
        action: "read an attempt",
        source: e,
    };
    let stats: String = r.try_get("stats").map_err(get)?;
    let failure: Option<String> = r.try_get("failure").map_err(get)?;
    Ok(Attempt {
        job_id: r.try_get("job_id").map_err(get)?,
        number: r.try_get("number").map_err(get)?,
        status: r.try_get("status").map_err(get)?,
        stats: parse_json("attempt's stats", &stats)?,
        records: r.try_get("records").map_err(get)?,
        bytes: r.try_get("bytes").map_err(get)?,
        records_committed: r.try_get("records_committed").map_err(get)?,
        failure: failure
            .map(|f| parse_json("failure reason", &f))
            .transpose()?,
        log_path: r.try_get("log_path").map_err(get)?,
        started_at: r.try_get("started_at").map_err(get)?,
        ended_at: r.try_get("ended_at").map_err(get)?,
    })
}

impl Store {
    /// Records a job that starts now, run by `owner` (HOST:PID); refused
    /// while the connection has a running job.
    pub async fn create_job(&self, connection_id: i64, kind: &str, owner: &str) -> Result<Job> {
        let now = now_ms();
        let id: std::result::Result<i64, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query_scalar("INSERT INTO jobs (connection_id, kind, status, owner, created_at, started_at) \
                                VALUES ($1, $2, 'running', $3, $4, $4) RETURNING id")
                .bind(connection_id)
                .bind(kind)
                .bind(owner)
                .bind(now)
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
        let failure = json_text(&serde_json::json!({
            "origin": "platform", "failure_type": "system_error", "message": message
        }));
        on_pool!(self, pool => {
            sqlx::query("UPDATE attempts SET status = 'failed', failure = $1, ended_at = $2 \
                         WHERE job_id = $3 AND status = 'running'")
                .bind(&failure)
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("end an abandoned job's attempts"))?;
        });
        self.finish_job(id, "failed").await
    }

    pub async fn get_job(&self, id: i64) -> Result<Option<Job>> {
        let sql = format!("{JOB_SELECT} WHERE j.id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await
                .map_err(query_err("read a job"))?;
            row.map(|r| job_from(&r)).transpose()
        })
    }

    /// Newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let sql = format!(
            "{JOB_SELECT} WHERE ($1 IS NULL OR j.connection_id = $1) \
             AND ($2 IS NULL OR j.status = $2) ORDER BY j.id DESC LIMIT $3"
        );
        let limit = if filter.limit <= 0 {
            i64::MAX
        } else {
            filter.limit
        };
        on_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(filter.connection_id)
                .bind(&filter.status)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(query_err("list jobs"))?
                .iter()
                .map(job_from)
                .collect()
        })
    }

    pub async fn set_job_changes(&self, id: i64, changes: &Value) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE jobs SET changes = $1 WHERE id = $2")
                .bind(json_text(changes))
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("record a job's schema changes"))?;
        });
        Ok(())
    }

    pub async fn finish_job(&self, id: i64, status: &str) -> Result<()> {
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
                         VALUES ($1, $2, 'running', $3, $4)")
                .bind(job_id)
                .bind(number)
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
                .bind(&end.status)
                .bind(json_text(&end.stats))
                .bind(end.records)
                .bind(end.bytes)
                .bind(end.records_committed)
                .bind(end.failure.as_ref().map(json_text))
                .bind(now_ms())
                .bind(job_id)
                .bind(number)
                .execute(pool)
                .await
                .map_err(query_err("finish an attempt"))?;
        });
        Ok(())
    }

    pub async fn list_attempts(&self, job_id: i64) -> Result<Vec<Attempt>> {
        on_pool!(self, pool => {
            sqlx::query("SELECT * FROM attempts WHERE job_id = $1 ORDER BY number")
                .bind(job_id)
                .fetch_all(pool)
                .await
                .map_err(query_err("list attempts"))?
                .iter()
                .map(attempt_from)
                .collect()
        })
    }
}

// ---------------------------------------------------------------------------
// State

/// A connection's committed state, in Airbyte's `--state` file form.
#[derive(Debug, Clone, Serialize)]
pub struct StoredState {
    pub state_type: String,
    pub state: Value,
    pub updated_at: i64,
}

impl Store {
    pub async fn get_state(&self, connection_id: i64) -> Result<Option<StoredState>> {
        on_pool!(self, pool => {
            let row = sqlx::query("SELECT state_type, state, updated_at FROM connection_state WHERE connection_id = $1")
                .bind(connection_id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read a connection's state"))?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let get = query_err("read a connection's state");
                    let text: String = r.try_get("state").map_err(get)?;
                    Ok(Some(StoredState {
                        state_type: r.try_get("state_type").map_err(query_err("read a connection's state"))?,
                        state: parse_json("state", &text)?,
                        updated_at: r.try_get("updated_at").map_err(query_err("read a connection's state"))?,
                    }))
                }
            }
        })
    }

    /// Replaces the connection's state in one statement.
    pub async fn put_state(
        &self,
        connection_id: i64,
        state_type: &str,
        state: &Value,
    ) -> Result<()> {
        const SQL: &str = "INSERT INTO connection_state (connection_id, state_type, state, updated_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id) DO UPDATE SET \
            state_type = excluded.state_type, state = excluded.state, updated_at = excluded.updated_at";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(connection_id)
                .bind(state_type)
                .bind(json_text(state))
                .bind(now_ms())
                .execute(pool)
                .await
                .map_err(query_err("save a connection's state"))?;
        });
        Ok(())
    }

    pub async fn delete_state(&self, connection_id: i64) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM connection_state WHERE connection_id = $1")
                .bind(connection_id)
                .execute(pool)
                .await
                .map_err(query_err("clear a connection's state"))?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// Where the default SQLite store lives in a data dir.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("sluice.db")
}

#[cfg(test)]
mod tests;
