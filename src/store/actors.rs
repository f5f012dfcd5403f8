//! Sources and destinations: a connector reference and its config, by
//! name, kept alike in two tables.

use super::column::{json, JsonText};
use super::{
    is_unique_violation, new_uuid, now_ms, parse_uuid, query_err, Result, Store, StoreError,
};
use crate::model::ActorKind;
use serde_json::Value;

/// A stored source or destination.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Actor {
    pub id: i64,
    /// Its stable id (see [`super::new_uuid`]).
    pub uuid: String,
    pub kind: ActorKind,
    pub name: String,
    pub connector: String,
    #[sqlx(try_from = "JsonText<Value>")]
    pub config: Value,
    /// JSON Pointers of the config's secret fields.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
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

pub(super) fn table(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Source => "sources",
        ActorKind::Destination => "destinations",
    }
}

/// The columns of a row, with its kind, which the table says.
fn select(kind: ActorKind) -> String {
    format!("SELECT *, '{}' AS kind FROM {}", kind.as_str(), table(kind))
}

impl Store {
    pub async fn create_actor(&self, kind: ActorKind, f: &ActorFields) -> Result<Actor> {
        let sql = format!(
            "INSERT INTO {} (name, connector, config, secret_paths, created_at, updated_at, uuid) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING *, '{}' AS kind",
            table(kind),
            kind.as_str()
        );
        let now = now_ms();
        let created = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(&f.name)
                .bind(&f.connector)
                .bind(json(&f.config))
                .bind(json(&f.secret_paths))
                .bind(now)
                .bind(new_uuid())
                .fetch_one(pool)
                .await
        });
        created.map_err(|source| {
            if is_unique_violation(&source) {
                StoreError::Exists {
                    kind: kind.as_str(),
                    name: f.name.clone(),
                }
            } else {
                StoreError::Query {
                    action: "create a source or destination",
                    source,
                }
            }
        })
    }

    /// The source or destination with this name or id.
    pub async fn get_actor(&self, kind: ActorKind, key: &str) -> Result<Option<Actor>> {
        if let Some(uuid) = parse_uuid(key) {
            let sql = format!("{} WHERE uuid = $1", select(kind));
            let found: Option<Actor> = on_pool!(self, pool => {
                sqlx::query_as(&sql).bind(uuid).fetch_optional(pool).await
                    .map_err(query_err("read a source or destination"))?
            });
            // A name like a UUID is refused now, but may have been
            // saved before.
            if found.is_some() {
                return Ok(found);
            }
        }
        let sql = format!("{} WHERE name = $1", select(kind));
        on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(key).fetch_optional(pool).await
                .map_err(query_err("read a source or destination"))
        })
    }

    pub async fn get_actor_by_id(&self, kind: ActorKind, id: i64) -> Result<Actor> {
        let sql = format!("{} WHERE id = $1", select(kind));
        on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_one(pool).await
                .map_err(query_err("read a source or destination"))
        })
    }

    pub async fn list_actors(&self, kind: ActorKind) -> Result<Vec<Actor>> {
        let sql = format!("{} ORDER BY name", select(kind));
        on_pool!(self, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await
                .map_err(query_err("list sources or destinations"))
        })
    }

    /// Replaces the connector, config and secret fields of `name`.
    pub async fn update_actor(&self, kind: ActorKind, f: &ActorFields) -> Result<Option<Actor>> {
        let sql = format!(
            "UPDATE {} SET connector = $1, config = $2, secret_paths = $3, updated_at = $4 \
             WHERE name = $5 RETURNING *, '{}' AS kind",
            table(kind),
            kind.as_str()
        );
        on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(&f.connector)
                .bind(json(&f.config))
                .bind(json(&f.secret_paths))
                .bind(now_ms())
                .bind(&f.name)
                .fetch_optional(pool)
                .await
                .map_err(query_err("update a source or destination"))
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
            table(kind)
        );
        let delete_sql = format!("DELETE FROM {} WHERE name = $1", table(kind));
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
