//! A source's schema, followed: what changed between a connection's
//! catalog and the source's streams now, and what the connection's policy
//! does about it before a job runs.

use super::{Prepared, Service};
use crate::api::{ApiError, ConnectionStatus, SchemaChangePolicy};
use crate::model::SchemaChange;
use crate::protocol::{AirbyteCatalog, ConfiguredAirbyteCatalog, StreamDescriptor, SyncMode};
use crate::service::Call;
use crate::store::{self, Job, Store};
use serde_json::Value;

impl Service {
    /// Compares the connection's catalog with the source's streams now and
    /// follows the connection's policy; a breaking change is an error.
    pub(super) async fn follow_schema(
        &self,
        store: &Store,
        c: &store::Connection,
        catalog: ConfiguredAirbyteCatalog,
        p: &Prepared,
        job: &Job,
        call: &Call,
    ) -> Result<ConfiguredAirbyteCatalog, ApiError> {
        let mut discovered = self.discover_actor(&p.source_actor, call).await?;
        // Fields the connection leaves out are no change to follow.
        for s in &mut discovered.streams {
            if let Some(fields) = crate::service::catalog::chosen(&c.selected_fields, s) {
                crate::service::catalog::select_fields(&mut s.json_schema, &fields);
            }
        }
        let known = Known::of(c);
        let changes = schema_changes(&catalog, &discovered, &known);
        // A new stream is said once: from now on it is known.
        let now: Vec<String> = discovered
            .streams
            .iter()
            .map(|s| s.descriptor().to_string())
            .collect();
        if now != c.known_streams {
            store.set_known_streams(c.id, &now).await?;
        }
        if changes.is_empty() {
            return Ok(catalog);
        }
        store.set_job_changes(job.id, &changes).await?;
        let breaking: Vec<String> = changes
            .iter()
            .filter(|ch| ch.breaking)
            .map(|ch| format!("stream `{}`: {}", ch.stream, ch.change))
            .collect();
        if !breaking.is_empty() {
            return Err(ApiError::user(format!(
                "the source's schema changed in a way connection `{}` cannot follow: {}",
                c.name,
                breaking.join("; ")
            ))
            .hint(format!(
                "update the connection to the source's streams (`sluice connection update {} --streams ...`)",
                c.name
            )));
        }
        let spec = crate::api::ConnectionSpec::of(c);
        let mut next = catalog.clone();
        match spec.schema_change {
            SchemaChangePolicy::Ignore => return Ok(catalog),
            SchemaChangePolicy::Disable => {
                store
                    .set_connection_status(&c.name, ConnectionStatus::Inactive)
                    .await?;
                return Err(ApiError::user(format!(
                    "the source's schema changed and connection `{}` disables itself on changes; it is now inactive",
                    c.name
                ))
                .hint(format!("`sluice job get {}` shows the changes; `sluice connection enable {}` turns it back on", job.id, c.name))
                );
            }
            SchemaChangePolicy::PropagateColumns | SchemaChangePolicy::PropagateFully => {
                for s in &mut next.streams {
                    if let Some(now) = discovered
                        .streams
                        .iter()
                        .find(|d| d.descriptor() == s.stream.descriptor())
                    {
                        s.stream = now.clone();
                    }
                }
            }
        }
        let mut fields = store::ConnectionFields::from(c);
        // A selected field the source dropped leaves the selection with it
        // (a selection it would empty stays, for the user to change).
        for (name, chosen) in &mut fields.selected_fields {
            let Some(now) = discovered
                .streams
                .iter()
                .find(|s| crate::service::catalog::matches(name, s))
            else {
                continue;
            };
            if let Some(props) = now.json_schema.get("properties").and_then(Value::as_object) {
                let kept: Vec<String> = chosen
                    .iter()
                    .filter(|f| props.contains_key(*f))
                    .cloned()
                    .collect();
                if !kept.is_empty() {
                    *chosen = kept;
                }
            }
        }
        let mut changed = fields.selected_fields != c.selected_fields;
        if spec.schema_change == SchemaChangePolicy::PropagateFully {
            let new: Vec<String> = changes
                .iter()
                .filter(|ch| ch.change == "new stream")
                .map(|ch| ch.stream.clone())
                .collect();
            let mut added_names = Vec::new();
            let mut notes = changes.clone();
            for name in new {
                // Each new stream on its own: one that cannot be synced the
                // connection's way is left out, not the whole job failed.
                let one = crate::service::catalog::configure(
                    &discovered,
                    &crate::service::catalog::StreamSelection {
                        streams: vec![name.clone()],
                        ..spec.selection()
                    },
                    crate::service::catalog::Generation {
                        sync_id: job.id,
                        generation_id: 0,
                    },
                );
                match one {
                    Ok(added) => {
                        next.streams.extend(added.streams);
                        added_names.push(name);
                    }
                    Err(e) => {
                        for n in notes
                            .iter_mut()
                            .filter(|n| n.stream == name && n.change == "new stream")
                        {
                            n.change = format!("new stream, not added: {}", e.message);
                        }
                    }
                }
            }
            if notes != changes {
                store.set_job_changes(job.id, &notes).await?;
            }
            if !spec.streams.is_empty() && !added_names.is_empty() {
                fields.streams.extend(added_names);
                changed = true;
            }
        }
        if changed {
            store.update_connection(&fields).await?;
        }
        Ok(next)
    }
}

/// Which of the source's streams a connection knew of, to tell a stream
/// that is new from one that was there and not selected.
pub struct Known<'a> {
    /// Every stream the source had when the connection last looked; empty
    /// for connections made before sluice kept it.
    pub streams: &'a [String],
    /// Whether the connection syncs every stream (then any other is new).
    pub all_selected: bool,
}

impl<'a> Known<'a> {
    pub fn of(c: &'a store::Connection) -> Self {
        Known {
            streams: &c.known_streams,
            all_selected: c.streams.is_empty(),
        }
    }

    fn is_new(&self, stream: &str) -> bool {
        if self.streams.is_empty() {
            self.all_selected
        } else {
            !self.streams.iter().any(|k| k == stream)
        }
    }
}

/// The differences between a configured catalog and a fresh discovery:
/// the selected streams' changes, and the streams that are new.
pub fn schema_changes(
    configured: &ConfiguredAirbyteCatalog,
    discovered: &AirbyteCatalog,
    known: &Known,
) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    let change = |stream: &StreamDescriptor, change: String, breaking: bool| SchemaChange {
        stream: stream.to_string(),
        change,
        breaking,
    };
    for c in &configured.streams {
        let d = c.stream.descriptor();
        let Some(now) = discovered.streams.iter().find(|s| s.descriptor() == d) else {
            out.push(change(&d, "the stream is gone".into(), true));
            continue;
        };
        let old = properties(&c.stream.json_schema);
        let new = properties(&now.json_schema);
        let key_fields: Vec<&String> = c.primary_key.iter().filter_map(|p| p.first()).collect();
        let cursor = (c.sync_mode == SyncMode::Incremental
            && c.stream.source_defined_cursor != Some(true))
        .then(|| c.cursor_field.first())
        .flatten();
        for (field, schema) in &old {
            match new.iter().find(|(f, _)| f == field) {
                None if key_fields.contains(&field) => out.push(change(
                    &d,
                    format!("primary key field `{field}` is gone"),
                    true,
                )),
                None if cursor == Some(field) => {
                    out.push(change(&d, format!("cursor field `{field}` is gone"), true))
                }
                None => out.push(change(&d, format!("column `{field}` removed"), false)),
                Some((_, s)) if s != schema => {
                    out.push(change(&d, format!("column `{field}` changed type"), false))
                }
                Some(_) => {}
            }
        }
        for (field, _) in &new {
            if !old.iter().any(|(f, _)| f == field) {
                out.push(change(&d, format!("column `{field}` added"), false));
            }
        }
    }
    for s in &discovered.streams {
        let d = s.descriptor();
        let selected = configured
            .streams
            .iter()
            .any(|c| c.stream.descriptor() == d);
        if !selected && known.is_new(&d.to_string()) {
            out.push(change(&d, "new stream".into(), false));
        }
    }
    out
}

fn properties(schema: &Value) -> Vec<(String, Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AirbyteStream, ConfiguredAirbyteStream, DestinationSyncMode, Extra};
    use serde_json::json;

    fn stream(name: &str, props: Value) -> AirbyteStream {
        let mut s = AirbyteStream::new(name, json!({"type": "object", "properties": props}));
        s.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
        s
    }

    fn configured(s: AirbyteStream, cursor: &str, key: &str) -> ConfiguredAirbyteStream {
        ConfiguredAirbyteStream {
            stream: s,
            sync_mode: SyncMode::Incremental,
            cursor_field: vec![cursor.into()],
            destination_sync_mode: DestinationSyncMode::Append,
            destination_object_name: None,
            primary_key: vec![vec![key.into()]],
            generation_id: None,
            minimum_generation_id: None,
            sync_id: None,
            include_files: None,
            extra: Extra::new(),
        }
    }

    #[test]
    fn schema_changes_are_found_and_classified() {
        let old = ConfiguredAirbyteCatalog {
            streams: vec![configured(
                stream(
                    "users",
                    json!({"id": {"type": "integer"}, "at": {"type": "string"}, "x": {"type": "string"}}),
                ),
                "at",
                "id",
            )],
            extra: Extra::new(),
        };
        let same = AirbyteCatalog {
            streams: vec![old.streams[0].stream.clone()],
            extra: Extra::new(),
        };
        let all = Known {
            streams: &[],
            all_selected: true,
        };
        assert!(schema_changes(&old, &same, &all).is_empty());

        let grown = AirbyteCatalog {
            streams: vec![
                stream(
                    "users",
                    json!({"id": {"type": "integer"}, "at": {"type": "string"}, "x": {"type": "number"}, "y": {}}),
                ),
                stream("orders", json!({})),
            ],
            extra: Extra::new(),
        };
        let changes = schema_changes(&old, &grown, &all);
        let text: Vec<(String, String, bool)> = changes
            .into_iter()
            .map(|c| (c.stream, c.change, c.breaking))
            .collect();
        assert_eq!(
            text,
            vec![
                ("users".into(), "column `x` changed type".into(), false),
                ("users".into(), "column `y` added".into(), false),
                ("orders".into(), "new stream".into(), false),
            ]
        );

        let broken = AirbyteCatalog {
            streams: vec![stream("users", json!({"x": {"type": "string"}}))],
            extra: Extra::new(),
        };
        let changes = schema_changes(&old, &broken, &all);
        assert!(changes.iter().all(|c| c.breaking));
        assert_eq!(
            changes
                .iter()
                .map(|c| c.change.as_str())
                .collect::<Vec<_>>(),
            [
                "primary key field `id` is gone",
                "cursor field `at` is gone"
            ]
        );
        let gone = schema_changes(&old, &AirbyteCatalog::default(), &all);
        assert_eq!(gone[0].change, "the stream is gone");
        assert!(gone[0].breaking);

        // A stream that was there and not selected is not new; one that
        // was not there is, once.
        let known = vec!["users".to_string(), "orders".to_string()];
        let chosen = Known {
            streams: &known,
            all_selected: false,
        };
        let mut more = grown.clone();
        more.streams.push(stream("invoices", json!({})));
        let news: Vec<String> = schema_changes(&old, &more, &chosen)
            .into_iter()
            .filter(|c| c.change == "new stream")
            .map(|c| c.stream)
            .collect();
        assert_eq!(news, ["invoices"]);
        let unknown = Known {
            streams: &[],
            all_selected: false,
        };
        assert!(schema_changes(&old, &more, &unknown)
            .iter()
            .all(|c| c.change != "new stream"));
    }
}
