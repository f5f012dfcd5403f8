//! What a sync does to each stream: the table it lands in, its columns
//! and their types from the stream's JSON schema, its mode (a refresh
//! turned into a replacement), its primary key and cursor.
//!
//! Read from the config and the catalog alone, before anything is loaded,
//! so a catalog sluice cannot write fails here; it never touches the
//! database.

use crate::connector::builtin::postgres::types::ColType;
use crate::connector::builtin::postgres::{ident, Config};
use crate::connector::builtin::{BuiltinError, BuiltinResult};
use crate::protocol::{ConfiguredAirbyteCatalog, DestinationSyncMode};
use serde_json::Value;

/// The column a record goes to whole when its stream's schema names no field.
const WHOLE_RECORD: &str = "_airbyte_data";

/// What a stream is written to, as both threads need it.
pub(super) struct Plan {
    /// The stream as records name it.
    pub(super) stream: crate::protocol::StreamDescriptor,
    pub(super) name: String,
    pub(super) schema: String,
    pub(super) table: String,
    pub(super) mode: DestinationSyncMode,
    /// The stream's fields: column names, in the schema's order.
    pub(super) fields: Vec<String>,
    /// The type of each field from the stream's JSON schema.
    pub(super) schema_types: Vec<ColType>,
    pub(super) primary_key: Vec<String>,
    pub(super) cursor: Option<String>,
    pub(super) generation_id: i64,
    pub(super) sync_id: Option<i64>,
    /// The schema names no field: the record goes whole into one column.
    pub(super) whole: bool,
    /// append_dedup of a refresh: deduplicated into a new table that
    /// replaces the final one when the stream completes.
    pub(super) refresh: bool,
}

impl Plan {
    pub(super) fn final_table(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.table))
    }

    /// A short name derived from the table's, for the tables and indexes
    /// sluice keeps beside it: stable, so a rerun finds a killed run's.
    pub(super) fn side_name(&self, what: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.schema.bytes().chain([0]).chain(self.table.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("_sluice_{what}_{h:016x}")
    }
}

pub(super) fn plans(
    config: &Config,
    catalog: &ConfiguredAirbyteCatalog,
) -> BuiltinResult<Vec<Plan>> {
    let mut out: Vec<Plan> = Vec::new();
    for c in &catalog.streams {
        let s = &c.stream;
        let name = s.descriptor().to_string();
        let schema = s
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_schema().to_string());
        let table = c
            .destination_object_name
            .clone()
            .unwrap_or_else(|| s.name.clone());
        let props = s.json_schema.get("properties").and_then(Value::as_object);
        let (fields, schema_types): (Vec<String>, Vec<ColType>) = props
            .map(|p| {
                p.iter()
                    .filter(|(k, _)| !k.starts_with("_airbyte_"))
                    .map(|(k, v)| (k.clone(), ColType::from_schema(v)))
                    .unzip()
            })
            .unwrap_or_default();
        // A stream whose schema names no field keeps each record whole.
        let whole = fields.is_empty();
        let (fields, schema_types) = if whole {
            (vec![WHOLE_RECORD.to_string()], vec![ColType::Jsonb])
        } else {
            (fields, schema_types)
        };
        if c.destination_sync_mode == DestinationSyncMode::AppendDedup && c.primary_key.is_empty() {
            return Err(BuiltinError::config(format!(
                "stream `{name}` has no primary key, which append_dedup needs"
            )));
        }
        let primary_key: Vec<String> = c.primary_key.iter().map(|path| path.join(".")).collect();
        for k in &primary_key {
            if !fields.contains(k) {
                return Err(BuiltinError::config(format!(
                    "stream `{name}`: the primary key `{k}` is not a field of its schema"
                )));
            }
        }
        let cursor = c
            .cursor_field
            .first()
            .filter(|f| fields.contains(f))
            .cloned();
        if !matches!(
            c.destination_sync_mode,
            DestinationSyncMode::Overwrite
                | DestinationSyncMode::Append
                | DestinationSyncMode::AppendDedup
        ) {
            return Err(BuiltinError::config(format!(
                "stream `{name}`: postgres writes overwrite, append and append_dedup, not {}",
                c.destination_sync_mode.as_str()
            )));
        }
        // A refresh replaces the table: an append becomes an overwrite, an
        // append_dedup deduplicates into a new table.
        let mode = match c.destination_sync_mode {
            DestinationSyncMode::Append if c.truncates() => DestinationSyncMode::Overwrite,
            m => m,
        };
        let plan = Plan {
            stream: s.descriptor(),
            name,
            schema,
            table,
            mode,
            fields,
            schema_types,
            primary_key,
            cursor,
            generation_id: c.generation_id.unwrap_or(0),
            sync_id: c.sync_id,
            whole,
            refresh: mode == DestinationSyncMode::AppendDedup && c.truncates(),
        };
        if let Some(other) = out
            .iter()
            .find(|p| p.schema == plan.schema && p.table == plan.table)
        {
            return Err(BuiltinError::config(format!(
                "streams `{}` and `{}` would both be written to {}",
                other.name,
                plan.name,
                plan.final_table()
            )));
        }
        out.push(plan);
    }
    Ok(out)
}

pub(super) fn plan_of(plans: &[Plan], namespace: Option<&str>, stream: &str) -> Option<usize> {
    plans
        .iter()
        .position(|p| p.table_stream_matches(namespace, stream))
}

impl Plan {
    /// Whether a record's stream is this plan's. Streams are few: a linear
    /// scan beats building a key per record.
    fn table_stream_matches(&self, namespace: Option<&str>, stream: &str) -> bool {
        self.stream.name == stream && self.stream.namespace.as_deref() == namespace
    }
}
