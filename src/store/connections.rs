//! Connections: a source, a destination, the streams and modes the user
//! chose, the configured catalog built from them, a schedule and a status.

use super::column::{json, JsonText};
use super::jobs::Job;
use super::{
    is_unique_violation, new_uuid, now_ms, parse_uuid, query_err, Result, Store, StoreError,
};
use crate::model::{ConnectionStatus, NamespaceRule, Notifications, Schedule, SchemaChangePolicy};
use crate::protocol::{ConfiguredAirbyteCatalog, DestinationSyncMode, SyncMode};
use std::collections::BTreeMap;

/// A stored connection, with the names of its source and destination.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Connection {
    pub id: i64,
    /// Its stable id (see [`super::new_uuid`]).
    pub uuid: String,
    pub name: String,
    pub source_id: i64,
    #[sqlx(rename = "source_name")]
    pub source: String,
    pub destination_id: i64,
    #[sqlx(rename = "destination_name")]
    pub destination: String,
    /// The streams the user chose; empty means all.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub streams: Vec<String>,
    pub sync_mode: Option<SyncMode>,
    pub destination_sync_mode: Option<DestinationSyncMode>,
    pub catalog: ConfiguredAirbyteCatalog,
    pub schedule: Schedule,
    pub namespace: NamespaceRule,
    pub prefix: String,
    pub status: ConnectionStatus,
    pub schema_change: SchemaChangePolicy,
    /// Cursors chosen by stream name.
    #[sqlx(try_from = "JsonText<StreamPaths>")]
    pub cursors: StreamPaths,
    /// Primary keys chosen by stream name.
    #[sqlx(try_from = "JsonText<StreamKeys>")]
    pub primary_keys: StreamKeys,
    /// Sync modes chosen by stream name, over `sync_mode`.
    #[sqlx(try_from = "JsonText<StreamModes>")]
    pub sync_modes: StreamModes,
    /// Destination sync modes chosen by stream name.
    #[sqlx(try_from = "JsonText<StreamDestinationModes>")]
    pub destination_sync_modes: StreamDestinationModes,
    /// The top-level fields chosen by stream name; a stream not named
    /// has all its fields.
    #[sqlx(try_from = "JsonText<StreamFields>")]
    pub selected_fields: StreamFields,
    /// Every stream the source had when the connection last looked.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub known_streams: Vec<String>,
    /// The zone of a cron schedule (kept apart from the schedule's text;
    /// the store's reads put it back into `schedule`).
    pub timezone: String,
    /// Webhooks called when its jobs end, unmasked.
    #[sqlx(try_from = "JsonText<Notifications>")]
    pub notifications: Notifications,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Connection {
    /// The schedule with the time zone its column holds.
    fn zoned(mut self) -> Connection {
        if let Schedule::Cron { timezone, .. } = &mut self.schedule {
            timezone.clone_from(&self.timezone);
        }
        self
    }
}

/// A field path per stream name.
pub type StreamPaths = BTreeMap<String, Vec<String>>;
/// Field paths per stream name.
pub type StreamKeys = BTreeMap<String, Vec<Vec<String>>>;
/// A sync mode per stream name.
pub type StreamModes = BTreeMap<String, SyncMode>;
/// A destination sync mode per stream name.
pub type StreamDestinationModes = BTreeMap<String, DestinationSyncMode>;
/// Top-level field names per stream name.
pub type StreamFields = BTreeMap<String, Vec<String>>;

/// What a connection is made of.
#[derive(Debug, Clone)]
pub struct ConnectionFields {
    pub name: String,
    pub source_id: i64,
    pub destination_id: i64,
    pub streams: Vec<String>,
    pub sync_mode: Option<SyncMode>,
    pub destination_sync_mode: Option<DestinationSyncMode>,
    pub catalog: ConfiguredAirbyteCatalog,
    pub schedule: Schedule,
    pub namespace: NamespaceRule,
    pub prefix: String,
    pub status: ConnectionStatus,
    pub schema_change: SchemaChangePolicy,
    pub cursors: StreamPaths,
    pub primary_keys: StreamKeys,
    pub sync_modes: StreamModes,
    pub destination_sync_modes: StreamDestinationModes,
    pub selected_fields: StreamFields,
    pub known_streams: Vec<String>,
    pub notifications: Notifications,
}

impl From<&Connection> for ConnectionFields {
    /// The fields of a stored connection, unchanged.
    fn from(c: &Connection) -> Self {
        ConnectionFields {
            name: c.name.clone(),
            source_id: c.source_id,
            destination_id: c.destination_id,
            streams: c.streams.clone(),
            sync_mode: c.sync_mode,
            destination_sync_mode: c.destination_sync_mode,
            catalog: c.catalog.clone(),
            schedule: c.schedule.clone(),
            namespace: c.namespace.clone(),
            prefix: c.prefix.clone(),
            status: c.status,
            schema_change: c.schema_change,
            cursors: c.cursors.clone(),
            primary_keys: c.primary_keys.clone(),
            sync_modes: c.sync_modes.clone(),
            destination_sync_modes: c.destination_sync_modes.clone(),
            selected_fields: c.selected_fields.clone(),
            known_streams: c.known_streams.clone(),
            notifications: c.notifications.clone(),
        }
    }
}

/// A connection with its last job, for listings.
#[derive(Debug, Clone)]
pub struct ConnectionSummary {
    pub connection: Connection,
    pub last_job: Option<Job>,
}

const SELECT: &str = "SELECT c.*, s.name AS source_name, d.name AS destination_name \
     FROM connections c JOIN sources s ON s.id = c.source_id \
     JOIN destinations d ON d.id = c.destination_id";

/// The columns a connection's fields fill, bound as $1 to $16 by
/// [`bind_connection!`]; then $17 is the time, $18 the name, and the
/// source and destination are whatever SQL the caller gives (an id bound
/// as $19 and $20, or a lookup by a name bound there). A new connection's
/// stable id is bound as $21.
const FIELDS: [&str; 16] = [
    "streams",
    "sync_mode",
    "destination_sync_mode",
    "catalog",
    "schedule",
    "namespace",
    "prefix",
    "status",
    "schema_change",
    "cursors",
    "primary_keys",
    "known_streams",
    "timezone",
    "sync_modes",
    "destination_sync_modes",
    "selected_fields",
];

/// The statement that creates (or else updates, by name) a connection.
pub(super) fn write_sql(create: bool, source: &str, destination: &str) -> String {
    if create {
        let params: Vec<String> = (1..=FIELDS.len()).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO connections ({}, created_at, updated_at, name, source_id, destination_id, uuid) \
             VALUES ({}, $17, $17, $18, {source}, {destination}, $21)",
            FIELDS.join(", "),
            params.join(", ")
        )
    } else {
        let sets: Vec<String> = FIELDS
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{f} = ${}", i + 1))
            .collect();
        format!(
            "UPDATE connections SET {}, updated_at = $17, source_id = {source}, \
             destination_id = {destination} WHERE name = $18",
            sets.join(", ")
        )
    }
}

/// Binds a connection's fields as [`write_sql`] numbers them ($1 to $16),
/// then the time ($17) and the name ($18).
macro_rules! bind_connection {
    ($query:expr, $f:expr, $now:expr) => {
        $query
            .bind(json(&$f.streams))
            .bind($f.sync_mode)
            .bind($f.destination_sync_mode)
            .bind(&$f.catalog)
            .bind(&$f.schedule)
            .bind(&$f.namespace)
            .bind(&$f.prefix)
            .bind($f.status)
            .bind($f.schema_change)
            .bind(json(&$f.cursors))
            .bind(json(&$f.primary_keys))
            .bind(json(&$f.known_streams))
            .bind($f.schedule.timezone().unwrap_or("UTC").to_string())
            .bind(json(&$f.sync_modes))
            .bind(json(&$f.destination_sync_modes))
            .bind(json(&$f.selected_fields))
            .bind($now)
            .bind(&$f.name)
    };
}
pub(super) use bind_connection;

/// Sets a connection's webhooks, by name: written apart from the other
/// fields, after them.
pub(super) const NOTIFICATIONS_SQL: &str =
    "UPDATE connections SET notifications = $1 WHERE name = $2";

impl Store {
    pub async fn create_connection(&self, f: &ConnectionFields) -> Result<Connection> {
        let sql = write_sql(true, "$19", "$20");
        let inserted = on_pool!(self, pool => {
            bind_connection!(sqlx::query(&sql), f, now_ms())
                .bind(f.source_id)
                .bind(f.destination_id)
                .bind(new_uuid())
                .execute(pool)
                .await
                .map(drop)
        });
        let inserted = match inserted {
            Ok(()) => self.set_notifications(&f.name, &f.notifications).await,
            Err(source) => Err(source),
        };
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

    /// The connection with this name or id.
    pub async fn get_connection(&self, key: &str) -> Result<Option<Connection>> {
        if let Some(uuid) = parse_uuid(key) {
            let found = self.connection_where("c.uuid", &uuid).await?;
            // A name like a UUID is refused now, but may have been
            // saved before.
            if found.is_some() {
                return Ok(found);
            }
        }
        self.connection_where("c.name", key).await
    }

    async fn connection_where(&self, column: &str, value: &str) -> Result<Option<Connection>> {
        let sql = format!("{SELECT} WHERE {column} = $1");
        on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(value).fetch_optional(pool).await
                .map(|c: Option<Connection>| c.map(Connection::zoned))
                .map_err(query_err("read a connection"))
        })
    }

    /// Every connection, by name, each with its newest job.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionSummary>> {
        let sql = format!("{SELECT} ORDER BY c.name");
        let connections: Vec<Connection> = on_pool!(self, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await
                .map_err(query_err("list connections"))?
        });
        let connections: Vec<Connection> = connections.into_iter().map(Connection::zoned).collect();
        let mut last = self.last_jobs().await?;
        Ok(connections
            .into_iter()
            .map(|c| ConnectionSummary {
                last_job: last.remove(&c.id),
                connection: c,
            })
            .collect())
    }

    /// A counter that moves with every change a listing of connections
    /// can show (any source, destination or connection; a job's status
    /// or times), made in the same statement as the change: an answer
    /// built at one value stays right until it moves.
    pub async fn revision(&self) -> Result<i64> {
        on_pool!(self, pool => {
            sqlx::query_scalar("SELECT n FROM revision WHERE id = 1")
                .fetch_one(pool)
                .await
                .map_err(query_err("read the store's revision"))
        })
    }

    /// Replaces everything but the name and the timestamps of creation.
    pub async fn update_connection(&self, f: &ConnectionFields) -> Result<Option<Connection>> {
        let sql = write_sql(false, "$19", "$20");
        let n = on_pool!(self, pool => {
            bind_connection!(sqlx::query(&sql), f, now_ms())
                .bind(f.source_id)
                .bind(f.destination_id)
                .execute(pool)
                .await
                .map_err(query_err("update a connection"))?
                .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        self.set_notifications(&f.name, &f.notifications)
            .await
            .map_err(query_err("update a connection's notifications"))?;
        self.get_connection(&f.name).await
    }

    pub async fn set_connection_catalog(
        &self,
        id: i64,
        catalog: &ConfiguredAirbyteCatalog,
    ) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE connections SET catalog = $1, updated_at = $2 WHERE id = $3")
                .bind(catalog)
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("save a connection's catalog"))?;
        });
        Ok(())
    }

    /// Records the streams the source has now.
    pub async fn set_known_streams(&self, id: i64, streams: &[String]) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE connections SET known_streams = $1 WHERE id = $2")
                .bind(json(&streams))
                .bind(id)
                .execute(pool)
                .await
                .map_err(query_err("save a connection's known streams"))?;
        });
        Ok(())
    }

    async fn set_notifications(
        &self,
        name: &str,
        n: &Notifications,
    ) -> std::result::Result<(), sqlx::Error> {
        on_pool!(self, pool => {
            sqlx::query(NOTIFICATIONS_SQL)
                .bind(json(n))
                .bind(name)
                .execute(pool)
                .await
                .map(drop)
        })
    }

    pub async fn set_connection_status(
        &self,
        name: &str,
        status: ConnectionStatus,
    ) -> Result<bool> {
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
