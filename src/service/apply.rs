//! `apply` and `export`: the whole setup (sources, destinations,
//! connections) as one document, compared with the store and applied.
//! Exports mask secrets.

use super::actors::validate_name;
use super::{Call, Service};
use crate::api::{
    ActorCreate, ActorDef, ActorKind, ActorUpdate, ApiError, ApplyPlan, ApplyRequest, ChangeAction,
    ConnectionCreate, ConnectionSpec, PlannedChange, Setup, SetupKind,
};
use crate::connector::config;
use serde_json::Value;

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
    /// The plan of changes from the store to the setup, then (unless a dry
    /// run) the changes, in order: sources and destinations, connections,
    /// then what `prune` deletes.
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
        let mut warnings = Vec::new();
        let mut actor_steps = Vec::new();
        for (kind, wanted) in [
            (ActorKind::Source, &setup.sources),
            (ActorKind::Destination, &setup.destinations),
        ] {
            let current = store.list_actors(kind).await?;
            for (name, def) in wanted {
                let stored = current.iter().find(|a| &a.name == name);
                let mut masked = Vec::new();
                let effective = match stored {
                    Some(a) => config::unmask(&def.config, &a.config),
                    None => def.config.clone(),
                };
                masked_fields(&effective, String::new(), &mut masked);
                if !masked.is_empty() {
                    warnings.push(format!(
                        "{kind} `{name}` has no stored value for {}; it is saved as `{}` (put ${{VAR}} there to read it from the environment)",
                        masked.join(", "),
                        config::MASK
                    ));
                }
                let action = match stored {
                    None => ChangeAction::Create,
                    Some(a) if a.connector == def.connector && effective == a.config => {
                        ChangeAction::Unchanged
                    }
                    Some(_) => ChangeAction::Update,
                };
                plan.push(PlannedChange {
                    kind: kind.into(),
                    name: name.clone(),
                    action,
                });
                actor_steps.push((kind, name.clone(), def.clone(), action));
            }
            if req.prune {
                for a in current.iter().filter(|a| !wanted.contains_key(&a.name)) {
                    plan.push(PlannedChange {
                        kind: kind.into(),
                        name: a.name.clone(),
                        action: ChangeAction::Delete,
                    });
                }
            }
        }
        let current = store.list_connections().await?;
        for (name, spec) in &setup.connections {
            let action = match current.iter().find(|c| &c.connection.name == name) {
                None => ChangeAction::Create,
                Some(c) if &ConnectionSpec::of(&c.connection) == spec => ChangeAction::Unchanged,
                Some(_) => ChangeAction::Update,
            };
            plan.push(PlannedChange {
                kind: SetupKind::Connection,
                name: name.clone(),
                action,
            });
        }
        if req.prune {
            for c in current
                .iter()
                .filter(|c| !setup.connections.contains_key(&c.connection.name))
            {
                plan.push(PlannedChange {
                    kind: SetupKind::Connection,
                    name: c.connection.name.clone(),
                    action: ChangeAction::Delete,
                });
            }
        }
        if req.dry_run {
            return Ok(ApplyPlan {
                changes: plan,
                applied: false,
                warnings,
            });
        }

        for (kind, name, def, action) in &actor_steps {
            match action {
                ChangeAction::Create => {
                    self.actor_create(
                        &ActorCreate {
                            kind: *kind,
                            name: name.clone(),
                            connector: def.connector.clone(),
                            config: Some(def.config.clone()),
                            check: req.check,
                            options: req.options.clone(),
                        },
                        call,
                    )
                    .await?;
                }
                ChangeAction::Update => {
                    self.actor_update(
                        &ActorUpdate {
                            kind: *kind,
                            name: name.clone(),
                            connector: Some(def.connector.clone()),
                            config: Some(def.config.clone()),
                            check: req.check,
                            options: req.options.clone(),
                        },
                        call,
                    )
                    .await?;
                }
                _ => {}
            }
        }
        for change in plan.iter().filter(|c| c.kind == SetupKind::Connection) {
            match change.action {
                ChangeAction::Create => {
                    self.connection_create(
                        &ConnectionCreate {
                            name: change.name.clone(),
                            spec: setup.connections[&change.name].clone(),
                            options: req.options.clone(),
                        },
                        call,
                    )
                    .await?;
                }
                ChangeAction::Update => {
                    self.connection_replace(&change.name, &setup.connections[&change.name], call)
                        .await?;
                }
                ChangeAction::Delete => self.connection_delete(&change.name).await?,
                ChangeAction::Unchanged => {}
            }
        }
        for change in plan.iter().filter(|c| c.action == ChangeAction::Delete) {
            match change.kind {
                SetupKind::Source => self.actor_delete(ActorKind::Source, &change.name).await?,
                SetupKind::Destination => {
                    self.actor_delete(ActorKind::Destination, &change.name)
                        .await?
                }
                SetupKind::Connection => {}
            }
        }
        Ok(ApplyPlan {
            changes: plan,
            applied: true,
            warnings,
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
