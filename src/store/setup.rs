//! A whole setup's changes written at once: sources, destinations and
//! connections created, updated and deleted in one transaction, so that a
//! change that fails half-way leaves the store as it was.

use super::actors::table;
use super::column::json;
use super::connections::{bind_connection, write_sql, ConnectionFields, NOTIFICATIONS_SQL};
use super::{
    is_unique_violation, new_uuid, now_ms, query_err, ActorFields, Result, Store, StoreError,
};
use crate::model::ActorKind;

/// What happens to one source, destination or connection.
#[derive(Debug, Clone)]
pub enum Change<T> {
    Create(T),
    Update(T),
    Delete(String),
}

/// A connection to write, naming its source and destination (which may be
/// created in the same changes); the ids in `fields` are ignored.
#[derive(Debug, Clone)]
pub struct ConnectionWrite {
    pub fields: ConnectionFields,
    pub source: String,
    pub destination: String,
}

/// Everything a setup changes, in the order it is applied: sources and
/// destinations, then connections; deletions of connections come before
/// deletions of what they used.
#[derive(Debug, Clone, Default)]
pub struct SetupChanges {
    pub actors: Vec<(ActorKind, Change<ActorFields>)>,
    pub connections: Vec<Change<ConnectionWrite>>,
}

impl Store {
    /// Applies every change in one transaction: all or nothing.
    pub async fn apply_setup(&self, changes: &SetupChanges) -> Result<()> {
        let now = now_ms();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(query_err("begin a transaction"))?;
            for (kind, change) in &changes.actors {
                let (sql, f, create) = match change {
                    Change::Create(f) => (
                        format!("INSERT INTO {} (connector, config, secret_paths, created_at, updated_at, name, uuid) \
                                 VALUES ($1, $2, $3, $4, $4, $5, $6)", table(*kind)),
                        f,
                        true,
                    ),
                    Change::Update(f) => (
                        format!("UPDATE {} SET connector = $1, config = $2, secret_paths = $3, updated_at = $4 \
                                 WHERE name = $5", table(*kind)),
                        f,
                        false,
                    ),
                    Change::Delete(_) => continue,
                };
                let mut query = sqlx::query(&sql)
                    .bind(&f.connector)
                    .bind(json(&f.config))
                    .bind(json(&f.secret_paths))
                    .bind(now)
                    .bind(&f.name);
                if create {
                    query = query.bind(new_uuid());
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| {
                        if is_unique_violation(&source) {
                            StoreError::Exists { kind: kind.as_str(), name: f.name.clone() }
                        } else {
                            StoreError::Query { action: "write a source or destination", source }
                        }
                    })?;
            }
            for change in &changes.connections {
                let (c, create) = match change {
                    Change::Create(c) => (c, true),
                    Change::Update(c) => (c, false),
                    Change::Delete(name) => {
                        sqlx::query("DELETE FROM connections WHERE name = $1")
                            .bind(name)
                            .execute(&mut *tx)
                            .await
                            .map_err(query_err("delete a connection"))?;
                        continue;
                    }
                };
                // The source and destination by name: they may have been
                // created above.
                let sql = write_sql(
                    create,
                    &format!("(SELECT id FROM {} WHERE name = $19)", table(ActorKind::Source)),
                    &format!("(SELECT id FROM {} WHERE name = $20)", table(ActorKind::Destination)),
                );
                let f = &c.fields;
                let mut query = bind_connection!(sqlx::query(&sql), f, now)
                    .bind(&c.source)
                    .bind(&c.destination);
                if create {
                    query = query.bind(new_uuid());
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| {
                        if is_unique_violation(&source) {
                            StoreError::Exists { kind: "connection", name: f.name.clone() }
                        } else {
                            StoreError::Query { action: "write a connection", source }
                        }
                    })?;
                sqlx::query(NOTIFICATIONS_SQL)
                    .bind(json(&f.notifications))
                    .bind(&f.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("write a connection's notifications"))?;
            }
            for (kind, change) in &changes.actors {
                let Change::Delete(name) = change else { continue };
                let column = match kind {
                    ActorKind::Source => "source_id",
                    ActorKind::Destination => "destination_id",
                };
                let users: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT c.name FROM connections c JOIN {} a ON c.{column} = a.id \
                     WHERE a.name = $1 ORDER BY c.name", table(*kind)))
                    .bind(name)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(query_err("find the connections of a source or destination"))?;
                if !users.is_empty() {
                    return Err(StoreError::InUse { kind: kind.as_str(), name: name.clone(), users: users.join(", ") });
                }
                sqlx::query(&format!("DELETE FROM {} WHERE name = $1", table(*kind)))
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("delete a source or destination"))?;
            }
            tx.commit().await.map_err(query_err("commit a setup"))?;
        });
        Ok(())
    }
}
