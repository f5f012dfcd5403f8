//! Building a configured catalog from what a source offers and what the
//! user asked for, with Airbyte's defaults for cursors and keys.

use crate::error::UserError;
use crate::protocol::{
    AirbyteCatalog, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, DestinationSyncMode, Extra,
    SyncMode,
};
use std::collections::BTreeMap;

/// What the user asked of the streams.
#[derive(Debug, Clone, Default)]
pub struct StreamSelection {
    /// Stream names (`name` or `namespace.name`); empty means all.
    pub streams: Vec<String>,
    pub sync_mode: Option<SyncMode>,
    pub destination_sync_mode: Option<DestinationSyncMode>,
    /// Cursors chosen by stream name, over the source's defaults.
    pub cursors: BTreeMap<String, Vec<String>>,
    /// Primary keys chosen by stream name, over the source's.
    pub primary_keys: BTreeMap<String, Vec<Vec<String>>>,
    /// Sync modes chosen by stream name, over `sync_mode`.
    pub sync_modes: BTreeMap<String, SyncMode>,
    /// Destination sync modes chosen by stream name, over
    /// `destination_sync_mode`.
    pub destination_sync_modes: BTreeMap<String, DestinationSyncMode>,
    /// The top-level fields to sync by stream name (all when not named).
    pub selected_fields: BTreeMap<String, Vec<String>>,
}

/// Ids Airbyte's platform gives each sync (see ConfiguredAirbyteStream).
#[derive(Debug, Clone, Copy)]
pub struct Generation {
    pub sync_id: i64,
    pub generation_id: i64,
}

/// The configured catalog for `selection` over `discovered`.
pub fn configure(
    discovered: &AirbyteCatalog,
    selection: &StreamSelection,
    generation: Generation,
) -> Result<ConfiguredAirbyteCatalog, UserError> {
    let available: Vec<String> = discovered
        .streams
        .iter()
        .map(|s| s.descriptor().to_string())
        .collect();
    let choices = selection
        .cursors
        .keys()
        .chain(selection.primary_keys.keys())
        .chain(selection.sync_modes.keys())
        .chain(selection.destination_sync_modes.keys())
        .chain(selection.selected_fields.keys());
    for wanted in selection.streams.iter().chain(choices.clone()) {
        if !discovered.streams.iter().any(|s| matches(wanted, s)) {
            return Err(
                UserError::new(format!("the source has no stream `{wanted}`"))
                    .hint(format!("its streams are: {}", available.join(", "))),
            );
        }
    }
    // A choice for a stream that is not synced would be kept unused, and
    // surprise when the stream is added.
    if !selection.streams.is_empty() {
        for wanted in choices {
            let synced = discovered
                .streams
                .iter()
                .filter(|s| matches(wanted, s))
                .any(|s| selection.streams.iter().any(|w| matches(w, s)));
            if !synced {
                return Err(UserError::new(format!(
                    "stream `{wanted}` has a choice (a mode, cursor, key or fields) but is not among the streams to sync"
                ))
                .hint("add it to --streams, or leave its choice out"));
            }
        }
    }
    let mut streams = Vec::new();
    for s in &discovered.streams {
        if !selection.streams.is_empty() && !selection.streams.iter().any(|w| matches(w, s)) {
            continue;
        }
        let name = s.descriptor();
        let sync_mode = chosen(&selection.sync_modes, s)
            .or(selection.sync_mode)
            .unwrap_or(SyncMode::FullRefresh);
        if !s.supported_sync_modes.contains(&sync_mode) {
            return Err(UserError::new(format!(
                "stream `{name}` does not support {} syncs (it supports: {})",
                sync_mode.as_str(),
                s.supported_sync_modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint(format!("choose another --sync-mode (or --stream-sync-mode {}=MODE for this stream alone), or leave the stream out with --streams", shell_word(&s.name))));
        }
        let destination_sync_mode = chosen(&selection.destination_sync_modes, s)
            .or(selection.destination_sync_mode)
            .unwrap_or(match sync_mode {
                SyncMode::FullRefresh => DestinationSyncMode::Overwrite,
                SyncMode::Incremental => DestinationSyncMode::Append,
            });
        if sync_mode == SyncMode::Incremental
            && destination_sync_mode == DestinationSyncMode::Overwrite
        {
            // Each run would replace the stream with only what is new.
            return Err(UserError::new(format!(
                "stream `{name}`: an incremental sync cannot overwrite: each run would replace \
                 the stream's data with only the records that are new since the last"
            ))
            .hint(format!("use append or append_dedup with incremental (--destination-sync-mode, or --stream-destination-sync-mode {}=MODE for this stream), or full_refresh to overwrite", shell_word(&s.name))));
        }
        let quoted = shell_word(&s.name);
        let cursor_field = if sync_mode == SyncMode::Incremental {
            match chosen(&selection.cursors, s) {
                // A source that keeps its own cursor takes none from the user.
                Some(_) if s.source_defined_cursor == Some(true) => {
                    return Err(UserError::new(format!(
                        "stream `{name}` keeps its own cursor; --cursor cannot choose another"
                    ))
                    .hint("leave --cursor out for this stream"));
                }
                Some(cursor) => {
                    if !has_field(&s.json_schema, &cursor) {
                        return Err(UserError::new(format!(
                            "stream `{name}` has no field `{}` to be its cursor",
                            cursor.join(".")
                        ))
                        .hint(format!(
                            "its fields are: {}",
                            field_names(&s.json_schema).join(", ")
                        )));
                    }
                    cursor
                }
                // A source that defines its own cursor needs none named.
                None if s.default_cursor_field.is_empty()
                    && s.source_defined_cursor != Some(true) =>
                {
                    return Err(UserError::new(format!(
                        "stream `{name}` has no default cursor, which an incremental sync needs"
                    ))
                    .hint(format!(
                        "name one with --cursor {quoted}=FIELD (its cursor candidates are in `sluice connector discover`), or pass a configured catalog with --catalog FILE"
                    )));
                }
                None => s.default_cursor_field.clone(),
            }
        } else {
            Vec::new()
        };
        let primary_key = chosen(&selection.primary_keys, s)
            .unwrap_or_else(|| s.source_defined_primary_key.clone());
        if destination_sync_mode == DestinationSyncMode::AppendDedup && primary_key.is_empty() {
            return Err(UserError::new(format!(
                "stream `{name}` has no primary key, which append_dedup needs"
            ))
            .hint(format!(
                "name one with --primary-key {quoted}=FIELD[,FIELD...], use --destination-sync-mode append, or pass a catalog with --catalog FILE"
            )));
        }
        let mut configured = ConfiguredAirbyteStream {
            stream: s.clone(),
            sync_mode,
            cursor_field,
            destination_sync_mode,
            destination_object_name: None,
            primary_key,
            generation_id: Some(generation.generation_id),
            minimum_generation_id: Some(minimum_generation(destination_sync_mode, generation)),
            sync_id: Some(generation.sync_id),
            include_files: None,
            extra: Extra::new(),
        };
        select_configured_fields(&mut configured, &selection.selected_fields)?;
        streams.push(configured);
    }
    if streams.is_empty() {
        return Err(UserError::new("the source offers no streams to sync"));
    }
    Ok(ConfiguredAirbyteCatalog {
        streams,
        extra: Extra::new(),
    })
}

/// Keeps only the fields `selected` names for a configured stream, in its
/// schema, once [`check_fields`] agrees; a stream not named keeps all.
pub fn select_configured_fields(
    c: &mut ConfiguredAirbyteStream,
    selected: &BTreeMap<String, Vec<String>>,
) -> Result<(), UserError> {
    if let Some(fields) = chosen(selected, &c.stream) {
        check_fields(c, &fields)?;
        select_fields(&mut c.stream.json_schema, &fields);
    }
    Ok(())
}

/// Refuses a field selection that names a field the stream lacks, or
/// leaves out a field the sync needs (the cursor, a deduplication key).
fn check_fields(c: &ConfiguredAirbyteStream, fields: &[String]) -> Result<(), UserError> {
    let s = &c.stream;
    let needed = c.cursor_field.first().into_iter().chain(
        c.primary_key
            .iter()
            .filter_map(|k| k.first())
            .filter(|_| c.destination_sync_mode == DestinationSyncMode::AppendDedup),
    );
    let (stream, schema) = (s.descriptor(), &s.json_schema);
    let quoted = shell_word(&s.name);
    if fields.is_empty() {
        return Err(UserError::new(format!(
            "stream `{stream}`: a field selection names no field"
        ))
        .hint(format!(
            "name the fields to keep (--fields {quoted}=FIELD[,FIELD...]), or leave the stream out with --streams"
        )));
    }
    for f in fields {
        if !has_field(schema, std::slice::from_ref(f)) {
            return Err(
                UserError::new(format!("stream `{stream}` has no field `{f}` to select")).hint(
                    format!("its fields are: {}", field_names(schema).join(", ")),
                ),
            );
        }
    }
    for f in needed {
        if !fields.contains(f) {
            return Err(UserError::new(format!(
                "stream `{stream}`: field `{f}` must be selected: the sync needs it as its cursor or deduplication key"
            ))
            .hint(format!(
                "add it: --fields {quoted}={},{f}",
                fields.join(",")
            )));
        }
    }
    Ok(())
}

/// Keeps only `fields` among a schema's top-level properties (and in its
/// `required`), as Airbyte's platform does for a selection.
pub fn select_fields(schema: &mut serde_json::Value, fields: &[String]) {
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.retain(|k, _| fields.contains(k));
    }
    if let Some(required) = schema
        .get_mut("required")
        .and_then(serde_json::Value::as_array_mut)
    {
        required.retain(|r| r.as_str().is_some_and(|r| fields.iter().any(|f| f == r)));
    }
}

/// Overwrite asks the destination to drop older generations once the new
/// one has landed; the other modes keep them.
pub fn minimum_generation(mode: DestinationSyncMode, g: Generation) -> i64 {
    match mode {
        DestinationSyncMode::Overwrite => g.generation_id,
        _ => 0,
    }
}

/// A name as a shell word: quoted when it holds what a shell splits on.
fn shell_word(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
    {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    }
}

/// Whether a stream's schema has the field at `path` (a schema that says
/// nothing of its properties may have any).
fn has_field(schema: &serde_json::Value, path: &[String]) -> bool {
    let mut at = schema;
    for part in path {
        match at.get("properties") {
            Some(props) => match props.get(part) {
                Some(next) => at = next,
                None => return false,
            },
            None => return true,
        }
    }
    true
}

fn field_names(schema: &serde_json::Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// What the user chose for a stream, by its name.
pub(crate) fn chosen<T: Clone>(
    map: &BTreeMap<String, T>,
    s: &crate::protocol::AirbyteStream,
) -> Option<T> {
    map.iter()
        .find(|(wanted, _)| matches(wanted, s))
        .map(|(_, v)| v.clone())
}

/// Whether a stream name the user wrote (`name` or `namespace.name`)
/// names `s`.
pub(crate) fn matches(wanted: &str, s: &crate::protocol::AirbyteStream) -> bool {
    crate::protocol::is_stream_named(wanted, s.namespace.as_deref(), &s.name)
}

/// Keeps the streams of a given catalog that `names` selects (all when empty).
pub fn filter(
    catalog: ConfiguredAirbyteCatalog,
    names: &[String],
) -> Result<ConfiguredAirbyteCatalog, UserError> {
    if names.is_empty() {
        return Ok(catalog);
    }
    for wanted in names {
        if !catalog.streams.iter().any(|s| matches(wanted, &s.stream)) {
            return Err(UserError::new(format!(
                "the catalog has no stream `{wanted}`"
            )));
        }
    }
    Ok(ConfiguredAirbyteCatalog {
        streams: catalog
            .streams
            .into_iter()
            .filter(|s| names.iter().any(|w| matches(w, &s.stream)))
            .collect(),
        extra: catalog.extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AirbyteStream;
    use serde_json::json;

    fn discovered() -> AirbyteCatalog {
        let mut users = AirbyteStream::new("users", json!({}));
        users.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
        users.default_cursor_field = vec!["updated_at".into()];
        users.source_defined_primary_key = vec![vec!["id".into()]];
        users.namespace = Some("public".into());
        let logs = AirbyteStream::new("logs", json!({}));
        AirbyteCatalog {
            streams: vec![users, logs],
            extra: Extra::new(),
        }
    }

    const G: Generation = Generation {
        sync_id: 10,
        generation_id: 10,
    };

    #[test]
    fn defaults_follow_airbyte() {
        let c = configure(&discovered(), &StreamSelection::default(), G).unwrap();
        assert_eq!(c.streams.len(), 2);
        let u = &c.streams[0];
        assert_eq!(u.sync_mode, SyncMode::FullRefresh);
        assert_eq!(u.destination_sync_mode, DestinationSyncMode::Overwrite);
        assert_eq!(u.primary_key, vec![vec!["id".to_string()]]);
        assert_eq!(
            (u.generation_id, u.minimum_generation_id),
            (Some(10), Some(10))
        );

        let sel = StreamSelection {
            streams: vec!["public.users".into()],
            sync_mode: Some(SyncMode::Incremental),
            ..Default::default()
        };
        let c = configure(&discovered(), &sel, G).unwrap();
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].cursor_field, vec!["updated_at".to_string()]);
        assert_eq!(
            c.streams[0].destination_sync_mode,
            DestinationSyncMode::Append
        );
        assert_eq!(c.streams[0].minimum_generation_id, Some(0));
    }

    #[test]
    fn impossible_requests_say_why_and_what_to_do() {
        let sel = StreamSelection {
            streams: vec!["nope".into()],
            ..Default::default()
        };
        let e = configure(&discovered(), &sel, G).unwrap_err();
        assert_eq!(e.to_string(), "the source has no stream `nope`");
        assert_eq!(
            e.hint.as_deref(),
            Some("its streams are: public.users, logs")
        );

        let sel = StreamSelection {
            streams: vec!["logs".into()],
            sync_mode: Some(SyncMode::Incremental),
            ..Default::default()
        };
        let e = configure(&discovered(), &sel, G).unwrap_err();
        assert!(
            e.to_string().contains("does not support incremental"),
            "{e}"
        );

        let sel = StreamSelection {
            streams: vec!["logs".into()],
            destination_sync_mode: Some(DestinationSyncMode::AppendDedup),
            ..Default::default()
        };
        let e = configure(&discovered(), &sel, G).unwrap_err();
        assert!(e.to_string().contains("no primary key"), "{e}");
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .contains("--primary-key logs=FIELD"),
            "{e:?}"
        );
    }

    #[test]
    fn cursors_and_keys_can_be_chosen_per_stream() {
        let sel = StreamSelection {
            streams: vec!["logs".into()],
            sync_mode: Some(SyncMode::FullRefresh),
            destination_sync_mode: Some(DestinationSyncMode::AppendDedup),
            primary_keys: BTreeMap::from([(
                "logs".into(),
                vec![vec!["a".into()], vec!["b".into()]],
            )]),
            ..Default::default()
        };
        let c = configure(&discovered(), &sel, G).unwrap();
        assert_eq!(
            c.streams[0].primary_key,
            vec![vec!["a".to_string()], vec!["b".to_string()]]
        );
        let mut users = discovered();
        users.streams[0].default_cursor_field.clear();
        users.streams[0]
            .supported_sync_modes
            .push(SyncMode::Incremental);
        let sel = StreamSelection {
            streams: vec!["public.users".into()],
            sync_mode: Some(SyncMode::Incremental),
            ..Default::default()
        };
        let e = configure(&users, &sel, G).unwrap_err();
        assert!(
            e.hint.as_deref().unwrap().contains("--cursor users=FIELD"),
            "{e:?}"
        );
        let sel = StreamSelection {
            cursors: BTreeMap::from([("public.users".into(), vec!["meta".into(), "at".into()])]),
            ..sel
        };
        let c = configure(&users, &sel, G).unwrap();
        assert_eq!(
            c.streams[0].cursor_field,
            vec!["meta".to_string(), "at".to_string()]
        );
        let sel = StreamSelection {
            cursors: BTreeMap::from([("nope".into(), vec!["x".into()])]),
            ..Default::default()
        };
        let e = configure(&users, &sel, G).unwrap_err();
        assert_eq!(e.message, "the source has no stream `nope`");
    }

    #[test]
    fn modes_and_fields_can_be_chosen_per_stream() {
        let mut cat = discovered();
        cat.streams[0].json_schema = json!({"type": "object", "required": ["id", "email"], "properties": {
            "id": {"type": "integer"}, "email": {"type": "string"},
            "updated_at": {"type": "string"}, "bio": {"type": "string"}}});
        // One stream incremental with deduplication, the other the
        // connection's full refresh and overwrite.
        let sel = StreamSelection {
            sync_modes: BTreeMap::from([("users".into(), SyncMode::Incremental)]),
            destination_sync_modes: BTreeMap::from([(
                "public.users".into(),
                DestinationSyncMode::AppendDedup,
            )]),
            selected_fields: BTreeMap::from([(
                "users".into(),
                vec!["id".into(), "updated_at".into()],
            )]),
            ..Default::default()
        };
        let c = configure(&cat, &sel, G).unwrap();
        let modes: Vec<_> = c
            .streams
            .iter()
            .map(|s| (s.sync_mode, s.destination_sync_mode))
            .collect();
        assert_eq!(
            modes,
            [
                (SyncMode::Incremental, DestinationSyncMode::AppendDedup),
                (SyncMode::FullRefresh, DestinationSyncMode::Overwrite)
            ]
        );
        assert_eq!(
            c.streams[0].stream.json_schema,
            json!({"type": "object", "required": ["id"], "properties": {
                "id": {"type": "integer"}, "updated_at": {"type": "string"}}})
        );
        // The stream-level mode wins over the connection's.
        let sel = StreamSelection {
            sync_mode: Some(SyncMode::Incremental),
            sync_modes: BTreeMap::from([("logs".into(), SyncMode::FullRefresh)]),
            ..Default::default()
        };
        let c = configure(&cat, &sel, G).unwrap();
        assert_eq!(c.streams[1].sync_mode, SyncMode::FullRefresh);
        assert_eq!(c.streams[0].sync_mode, SyncMode::Incremental);

        // A selection must keep the cursor and the deduplication key, and
        // name only fields the stream has.
        let without = |fields: &[&str]| StreamSelection {
            streams: vec!["users".into()],
            sync_mode: Some(SyncMode::Incremental),
            destination_sync_mode: Some(DestinationSyncMode::AppendDedup),
            selected_fields: BTreeMap::from([(
                "users".into(),
                fields.iter().map(|f| f.to_string()).collect(),
            )]),
            ..Default::default()
        };
        let e = configure(&cat, &without(&["id", "email"]), G).unwrap_err();
        assert!(
            e.message.contains("field `updated_at` must be selected"),
            "{e}"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("add it: --fields users=id,email,updated_at")
        );
        let e = configure(&cat, &without(&["email", "updated_at"]), G).unwrap_err();
        assert!(e.message.contains("field `id` must be selected"), "{e}");
        let e = configure(&cat, &without(&["id", "updated_at", "age"]), G).unwrap_err();
        assert_eq!(
            e.message,
            "stream `public.users` has no field `age` to select"
        );
        let e = configure(&cat, &without(&[]), G).unwrap_err();
        assert!(e.message.contains("names no field"), "{e}");
        let sel = StreamSelection {
            sync_modes: BTreeMap::from([("nope".into(), SyncMode::FullRefresh)]),
            ..Default::default()
        };
        let e = configure(&cat, &sel, G).unwrap_err();
        assert_eq!(e.message, "the source has no stream `nope`");
        // A choice for a stream left out of the sync is refused.
        let sel = StreamSelection {
            streams: vec!["logs".into()],
            selected_fields: BTreeMap::from([("users".into(), vec!["id".into()])]),
            ..Default::default()
        };
        let e = configure(&cat, &sel, G).unwrap_err();
        assert!(
            e.message.contains("is not among the streams to sync"),
            "{e}"
        );
    }
}
