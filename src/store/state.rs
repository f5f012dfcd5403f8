//! Each connection's committed state, in Airbyte's `--state` file form,
//! replaced whole at every commit.

use super::column::{json, JsonText};
use super::{now_ms, query_err, Result, Store};
use crate::protocol::StateType;
use serde_json::Value;

/// A connection's committed state.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct StoredState {
    pub state_type: StateType,
    #[sqlx(try_from = "JsonText<Value>")]
    pub state: Value,
    pub updated_at: i64,
}

impl Store {
    pub async fn get_state(&self, connection_id: i64) -> Result<Option<StoredState>> {
        on_pool!(self, pool => {
            sqlx::query_as("SELECT state_type, state, updated_at FROM connection_state WHERE connection_id = $1")
                .bind(connection_id)
                .fetch_optional(pool)
                .await
                .map_err(query_err("read a connection's state"))
        })
    }

    /// Replaces the connection's state in one statement.
    pub async fn put_state(
        &self,
        connection_id: i64,
        state_type: StateType,
        state: &Value,
    ) -> Result<()> {
        const SQL: &str = "INSERT INTO connection_state (connection_id, state_type, state, updated_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id) DO UPDATE SET \
            state_type = excluded.state_type, state = excluded.state, updated_at = excluded.updated_at";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(connection_id)
                .bind(state_type)
                .bind(json(state))
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
