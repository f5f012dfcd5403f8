//! A connection's state: read, replaced after checking it, or cleared for
//! some streams or all.

use crate::api::{ApiError, ConnectionState};
use crate::protocol::{ConfiguredAirbyteCatalog, StateSnapshot, StreamDescriptor};
use crate::service::Service;
use crate::store::Store;
use serde_json::Value;

impl Service {
    pub async fn state_get(&self, connection: &str) -> Result<Option<ConnectionState>, ApiError> {
        let c = self.connection(connection).await?;
        let stored = self.store().await?.get_state(c.id).await?;
        Ok(stored.map(|s| ConnectionState {
            state_type: s.state_type,
            state: s.state,
            updated_at: s.updated_at,
        }))
    }

    /// Replaces the state with `value` (Airbyte's `--state` form), after
    /// checking it and that its streams are the connection's.
    pub async fn state_set(&self, connection: &str, value: Value) -> Result<(), ApiError> {
        let c = self.connection(connection).await?;
        let snapshot = StateSnapshot::from_file_value(value).map_err(|e| {
            ApiError::user(format!("the state for connection `{connection}` is not valid: {e}"))
                .hint("a state is what Airbyte passes to --state: an array of state messages, or a legacy state object")
        })?;
        let s = self.store().await?;
        let Some(snapshot) = snapshot else {
            s.delete_state(c.id).await?;
            return Ok(());
        };
        state_streams_known(&snapshot, &c.catalog, &format!("connection `{connection}`"))?;
        Ok(
            s.put_state(c.id, snapshot.state_type(), &snapshot.to_file_value())
                .await?,
        )
    }

    /// Clears the state of some streams, or all of it.
    pub async fn state_reset(&self, connection: &str, streams: &[String]) -> Result<(), ApiError> {
        let c = self.connection(connection).await?;
        let chosen = selected(&c.catalog, streams)?;
        clear_state(self.store().await?, c.id, &chosen, streams.is_empty()).await
    }
}

/// Refuses a state that names a stream `catalog` does not have: it would
/// resume nothing, and read that stream again from the start. `who`
/// names what reads the catalog ("connection `c`", "this sync").
pub(crate) fn state_streams_known(
    snapshot: &StateSnapshot,
    catalog: &ConfiguredAirbyteCatalog,
    who: &str,
) -> Result<(), ApiError> {
    let known: Vec<StreamDescriptor> = catalog
        .streams
        .iter()
        .map(|s| s.stream.descriptor())
        .collect();
    let named: Vec<StreamDescriptor> = match snapshot {
        StateSnapshot::Stream(msgs) => msgs
            .iter()
            .filter_map(|m| m.stream.as_ref().map(|s| s.stream_descriptor.clone()))
            .collect(),
        StateSnapshot::Global(g) => g
            .global
            .iter()
            .flat_map(|g| g.stream_states.iter().map(|s| s.stream_descriptor.clone()))
            .collect(),
        StateSnapshot::Legacy(_) => Vec::new(),
    };
    match named.iter().find(|d| !known.contains(d)) {
        Some(unknown) => Err(ApiError::user(format!(
            "the state names stream `{unknown}`, which is not one of the streams of {who}"
        ))
        .hint(format!(
            "its streams are: {}",
            known
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

/// The descriptors of the named streams of a catalog (all when none named).
pub(super) fn selected(
    catalog: &ConfiguredAirbyteCatalog,
    names: &[String],
) -> Result<Vec<StreamDescriptor>, ApiError> {
    let all: Vec<StreamDescriptor> = catalog
        .streams
        .iter()
        .map(|s| s.stream.descriptor())
        .collect();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|d| d.to_string() == *n || d.name == *n)
                .cloned()
                .ok_or_else(|| {
                    ApiError::user(format!("the connection has no stream `{n}`")).hint(format!(
                        "its streams are: {}",
                        all.iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        })
        .collect()
}

pub(super) async fn clear_state(
    store: &Store,
    connection_id: i64,
    streams: &[StreamDescriptor],
    all: bool,
) -> Result<(), ApiError> {
    if all {
        store.delete_state(connection_id).await?;
        return Ok(());
    }
    let Some(stored) = store.get_state(connection_id).await? else {
        return Ok(());
    };
    let snapshot = StateSnapshot::from_file_value(stored.state)
        .map_err(|e| ApiError::failed(format!("the stored state is not valid: {e}")))?;
    match snapshot.and_then(|s| s.without_streams(streams)) {
        Some(left) => {
            store
                .put_state(connection_id, left.state_type(), &left.to_file_value())
                .await?
        }
        None => {
            store.delete_state(connection_id).await?;
        }
    }
    Ok(())
}
