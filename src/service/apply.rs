//! `apply` and `export`: the whole setup (sources, destinations,
//! connections) as one document, compared with the store and applied.
//! Exports mask secrets.

use super::actors::validate_name;
use super::{Call, Service};
use crate::api::{
    ActorDef, ActorKind, ApiError, ApplyPlan, ApplyRequest, ChangeAction, ConnectionSpec,
    PlannedChange, Setup, SetupKind,
};
use crate::connector::config;
use crate::store::{Actor, ActorFields, Change, ConnectionWrite, SetupChanges};
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSON Pointers of string values that are the mask itself.
fn masked_fields(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s == config::MASK => out.push(path),
        Value::Object(fields) => {
            for (k, v) in fields {
                masked_fields(v, format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                masked_fields(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

impl Service {
    /// Applies a setup, all or nothing. Every source, destination and
    /// connection that changes is checked first (its connector resolved
    /// and installed, its config against the spec, the references between
    /// them, the source's streams discovered); a dry run stops there with
    /// the plan. Then every store change is made in one transaction.
    pub async fn apply(&self, req: &ApplyRequest, call: &Call) -> Result<ApplyPlan, ApiError> {
        let setup = &req.setup;
        for (kind, names) in [
            (SetupKind::Source, setup.sources.keys().collect::<Vec<_>>()),
            (SetupKind::Destination, setup.destinations.keys().collect()),
            (SetupKind::Connection, setup.connections.keys().collect()),
        ] {
            for n in names {
                validate_name(kind.as_str(), n)?;
            }
        }
        let store = self.store().await?;
        let mut plan = Vec::new();
        let mut changes = SetupChanges::default();
        // What a connection of the setup finds: each source and destination
        // as it will be, and which will be gone.
        let mut after: BTreeMap<(ActorKind, String), Actor> = BTreeMap::new();
        for (kind, wanted) in [
            (ActorKind::Source, &setup.sources),
            (ActorKind::Destination, &setup.destinations),
        ] {
            let current = store.list_actors(kind).await?;
            for a in &current {
                after.insert((kind, a.name.clone()), a.clone());
            }
            for (name, def) in wanted {
                let stored = current.iter().find(|a| &a.name == name);
                // A field left masked keeps the stored secret; there must be one.
                let config = match stored {
                    Some(a) => config::unmask(&def.config, &a.config),
                    None => def.config.clone(),
                };
                let mut masked = Vec::new();
                masked_fields(&config, String::new(), &mut masked);
                if !masked.is_empty() {
                    return Err(ApiError::user(format!(
                        "{kind} `{name}` gives {} as `{}`, and there is no stored secret to keep",
                        masked.join(", "),
                        config::MASK
                    ))
                    .hint("put the value there, or ${VAR} to read it from the environment"));
                }
                let action = match stored {
                    None => ChangeAction::Create,
                    Some(a) if a.connector == def.connector && config == a.config => {
                        ChangeAction::Unchanged
                    }
                    Some(_) => ChangeAction::Update,
                };
                if action != ChangeAction::Unchanged {
                    let secret_paths = self
                        .validated(kind, name, &def.connector, &config, call)
                        .await?;
                    if req.check {
                        self.checked(kind, name, &def.connector, &config, call)
                            .await?;
                    }
                    let fields = ActorFields {
                        name: name.clone(),
                        connector: def.connector.clone(),
                        config: config.clone(),
                        secret_paths,
                    };
                    changes.actors.push((
                        kind,
                        match action {
                            ChangeAction::Create => Change::Create(fields),
                            _ => Change::Update(fields),
                        },
                    ));
                }
                let entry = after.entry((kind, name.clone())).or_insert_with(|| Actor {
                    id: 0,
                    uuid: String::new(),
                    kind,
                    name: name.clone(),
                    connector: def.connector.clone(),
                    config: config.clone(),
                    secret_paths: Vec::new(),
                    created_at: 0,
                    updated_at: 0,
                });
                entry.connector = def.connector.clone();
                entry.config = config;
                plan.push(PlannedChange {
                    kind: kind.into(),
                    name: name.clone(),
                    action,
                });
            }
            if req.prune {
                for a in current.iter().filter(|a| !wanted.contains_key(&a.name)) {
                    after.remove(&(kind, a.name.clone()));
                    changes.actors.push((kind, Change::Delete(a.name.clone())));
                    plan.push(PlannedChange {
                        kind: kind.into(),
                        name: a.name.clone(),
                        action: ChangeAction::Delete,
                    });
                }
            }
        }

        let current = store.list_connections().await?;
        let mut staying: Vec<(String, String, String)> = Vec::new();
        for (name, spec) in &setup.connections {
            let old = current.iter().find(|c| &c.connection.name == name);
            let action = match old {
                None => ChangeAction::Create,
                Some(c) if &ConnectionSpec::of(&c.connection) == spec => ChangeAction::Unchanged,
                Some(_) => ChangeAction::Update,
            };
            let source = after.get(&(ActorKind::Source, spec.source.clone()));
            let destination = after.get(&(ActorKind::Destination, spec.destination.clone()));
            let (Some(source), Some(destination)) = (source, destination) else {
                let (kind, missing) = match source {
                    None => ("source", &spec.source),
                    Some(_) => ("destination", &spec.destination),
                };
                return Err(ApiError::not_found(format!(
                    "connection `{name}` uses {kind} `{missing}`, which neither the setup nor the store has"
                ))
                .hint(format!("add it under `{kind}s:`, or name one that exists")));
            };
            if action != ChangeAction::Unchanged {
                let fields = self
                    .connection_fields(
                        name,
                        spec,
                        old.map(|c| &c.connection),
                        source,
                        destination,
                        call,
                    )
                    .await
                    .map_err(in_setup_words)?;
                let write = ConnectionWrite {
                    fields,
                    source: spec.source.clone(),
                    destination: spec.destination.clone(),
                };
                changes.connections.push(match action {
                    ChangeAction::Create => Change::Create(write),
                    _ => Change::Update(write),
                });
            }
            staying.push((name.clone(), spec.source.clone(), spec.destination.clone()));
            plan.push(PlannedChange {
                kind: SetupKind::Connection,
                name: name.clone(),
                action,
            });
        }
        for c in &current {
            let name = &c.connection.name;
            if setup.connections.contains_key(name) {
                continue;
            }
            if req.prune {
                changes.connections.push(Change::Delete(name.clone()));
                plan.push(PlannedChange {
                    kind: SetupKind::Connection,
                    name: name.clone(),
                    action: ChangeAction::Delete,
                });
            } else {
                staying.push((
                    name.clone(),
                    c.connection.source.clone(),
                    c.connection.destination.clone(),
                ));
            }
        }
        // What is deleted must not be used by a connection that stays.
        for (name, source, destination) in &staying {
            for (kind, used) in [
                (ActorKind::Source, source),
                (ActorKind::Destination, destination),
            ] {
                if !after.contains_key(&(kind, used.clone())) {
                    return Err(ApiError::conflict(format!(
                        "{kind} `{used}` would be deleted, but connection `{name}` uses it"
                    ))
                    .hint(format!(
                        "delete the connection too, or keep the {kind} in the setup"
                    )));
                }
            }
        }
        if !req.dry_run {
            store.apply_setup(&changes).await?;
        }
        Ok(ApplyPlan {
            changes: plan,
            applied: !req.dry_run,
            warnings: Vec::new(),
        })
    }

    /// The setup in the store, secrets masked.
    pub async fn export(&self) -> Result<Setup, ApiError> {
        let mut setup = Setup::default();
        for (kind, map) in [
            (ActorKind::Source, &mut setup.sources),
            (ActorKind::Destination, &mut setup.destinations),
        ] {
            for a in self.actor_list(kind, false).await? {
                map.insert(
                    a.name,
                    ActorDef {
                        connector: a.connector,
                        config: a.config,
                    },
                );
            }
        }
        for c in self.store().await?.list_connections().await? {
            setup
                .connections
                .insert(c.connection.name.clone(), ConnectionSpec::of(&c.connection));
        }
        Ok(setup)
    }
}

/// The setup file's keys for the command-line options a hint names.
const SETUP_KEYS: &[(&str, &str)] = &[
    ("--stream-destination-sync-mode", "destination_sync_modes"),
    ("--stream-sync-mode", "sync_modes"),
    ("--destination-sync-mode", "destination_sync_mode"),
    ("--sync-mode", "sync_mode"),
    ("--primary-key", "primary_keys"),
    ("--cursor", "cursors"),
    ("--fields", "selected_fields"),
    ("--streams", "streams"),
];

/// An error of a connection's choices as a setup file's author reads it:
/// a hint that names command-line options says which keys they are.
fn in_setup_words(mut e: ApiError) -> ApiError {
    if let Some(hint) = &e.hint {
        let mut named: Vec<String> = Vec::new();
        let mut rest = hint.as_str();
        while let Some(at) = rest.find("--") {
            let flag = &rest[at..];
            if let Some((f, key)) = SETUP_KEYS.iter().find(|(f, _)| {
                flag.starts_with(f)
                    && !flag[f.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            }) {
                let words = format!("`{key}:` for {f}");
                if !named.contains(&words) {
                    named.push(words);
                }
                rest = &flag[f.len()..];
            } else {
                rest = &flag[2..];
            }
        }
        if !named.is_empty() {
            e.hint = Some(format!("{hint} (in a setup file: {})", named.join(", ")));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_setup_keys_of_the_options_they_name() {
        let e = in_setup_words(
            ApiError::user("x")
                .hint("add it: --fields t=qty,id, or leave the stream out with --streams"),
        );
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "add it: --fields t=qty,id, or leave the stream out with --streams \
                 (in a setup file: `selected_fields:` for --fields, `streams:` for --streams)"
            )
        );
        let e = in_setup_words(ApiError::user("x").hint(
            "choose another --sync-mode (or --stream-sync-mode t=MODE for this stream alone)",
        ));
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .ends_with("(in a setup file: `sync_mode:` for --sync-mode, `sync_modes:` for --stream-sync-mode)"),
            "{:?}",
            e.hint
        );
        let plain = in_setup_words(ApiError::user("x").hint("its streams are: users"));
        assert_eq!(plain.hint.as_deref(), Some("its streams are: users"));
    }
}
