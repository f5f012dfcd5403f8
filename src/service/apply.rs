//! `apply` and `export`: the whole setup (sources, destinations,
//! connections) as one YAML document. `${VAR}` in the document is read
//! from the environment when it is applied; exports mask secrets.

use super::managed::{store_error, ConnectionSpec};
use super::{ConfigInput, Service, Ui};
use crate::connector::config;
use crate::error::UserError;
use crate::store::ActorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A source or destination in a setup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorDef {
    pub connector: String,
    #[serde(default = "empty_object")]
    pub config: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Everything sluice runs, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub sources: BTreeMap<String, ActorDef>,
    #[serde(default)]
    pub destinations: BTreeMap<String, ActorDef>,
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionSpec>,
}

impl Setup {
    /// Parses a setup file, replacing `${VAR}` in its strings with `env(VAR)`
    /// (`$${VAR}` stays `${VAR}`). `file` names it in errors.
    pub fn parse(
        text: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Setup, UserError> {
        let raw: Value = serde_norway::from_str(text)
            .map_err(|e| UserError::new(format!("{file} is not valid YAML: {e}")))?;
        let raw = if raw.is_null() { empty_object() } else { raw };
        let resolved = interpolate(raw, &env, file)?;
        serde_json::from_value(resolved).map_err(|e| {
            UserError::new(format!("{file} is not a sluice setup: {e}")).hint(
                "it has `sources:`, `destinations:` and `connections:`, each a map by name; `sluice export` writes one",
            )
        })
    }

    pub fn to_yaml(&self) -> anyhow::Result<String> {
        Ok(serde_norway::to_string(self)?)
    }
}

fn interpolate(
    v: Value,
    env: &impl Fn(&str) -> Option<String>,
    file: &str,
) -> Result<Value, UserError> {
    Ok(match v {
        Value::String(s) => Value::String(substitute(&s, env, file)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| interpolate(i, env, file))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, interpolate(v, env, file)?)))
                .collect::<Result<_, UserError>>()?,
        ),
        other => other,
    })
}

fn substitute(
    s: &str,
    env: &impl Fn(&str) -> Option<String>,
    file: &str,
) -> Result<String, UserError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(UserError::new(format!(
                    "{file}: `{s}` has a `${{` without its `}}`"
                )));
            };
            let name = &tail[..end];
            let value = env(name).ok_or_else(|| {
                UserError::new(format!("{file} uses ${{{name}}}, which is not set"))
                    .hint(format!("export {name}=... before running sluice"))
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One change `apply` makes (or would make).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    /// source, destination or connection.
    pub kind: &'static str,
    pub name: String,
    /// create, update, delete or unchanged.
    pub action: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyPlan {
    pub changes: Vec<PlannedChange>,
    pub applied: bool,
    /// Things the user should know: secrets saved as the mask itself.
    pub warnings: Vec<String>,
}

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

/// How to apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub prune: bool,
    pub dry_run: bool,
    pub check: bool,
}

impl Service {
    /// The plan of changes from the store to `setup`, then (unless a dry
    /// run) the changes, in order: sources and destinations, connections,
    /// then what `prune` deletes.
    pub async fn apply(
        &self,
        setup: &Setup,
        o: ApplyOptions,
        ui: &Ui,
    ) -> anyhow::Result<ApplyPlan> {
        for (kind, names) in [
            ("source", setup.sources.keys().collect::<Vec<_>>()),
            ("destination", setup.destinations.keys().collect()),
            ("connection", setup.connections.keys().collect()),
        ] {
            for n in names {
                super::managed::validate_name(kind, n)?;
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
            let current = store.list_actors(kind).await.map_err(store_error)?;
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
                        "{} `{name}` has no stored value for {}; it is saved as `{}` (put ${{VAR}} there to read it from the environment)",
                        kind.as_str(),
                        masked.join(", "),
                        config::MASK
                    ));
                }
                let action = match stored {
                    None => "create",
                    Some(a) => {
                        let merged = config::unmask(&def.config, &a.config);
                        if a.connector == def.connector && merged == a.config {
                            "unchanged"
                        } else {
                            "update"
                        }
                    }
                };
                plan.push(PlannedChange {
                    kind: kind.as_str(),
                    name: name.clone(),
                    action,
                });
                actor_steps.push((kind, name.clone(), def.clone(), action));
            }
            if o.prune {
                for a in current.iter().filter(|a| !wanted.contains_key(&a.name)) {
                    plan.push(PlannedChange {
                        kind: kind.as_str(),
                        name: a.name.clone(),
                        action: "delete",
                    });
                }
            }
        }
        let current = store.list_connections().await.map_err(store_error)?;
        for (name, spec) in &setup.connections {
            let action = match current.iter().find(|c| &c.connection.name == name) {
                None => "create",
                Some(c) if &ConnectionSpec::of(&c.connection) == spec => "unchanged",
                Some(_) => "update",
            };
            plan.push(PlannedChange {
                kind: "connection",
                name: name.clone(),
                action,
            });
        }
        if o.prune {
            for c in current
                .iter()
                .filter(|c| !setup.connections.contains_key(&c.connection.name))
            {
                plan.push(PlannedChange {
                    kind: "connection",
                    name: c.connection.name.clone(),
                    action: "delete",
                });
            }
        }
        if o.dry_run {
            return Ok(ApplyPlan {
                changes: plan,
                applied: false,
                warnings,
            });
        }

        for (kind, name, def, action) in &actor_steps {
            let config = ConfigInput::Inline(def.config.clone());
            match *action {
                "create" => {
                    self.actor_create(*kind, name, &def.connector, &config, o.check, ui)
                        .await?;
                }
                "update" => {
                    self.actor_update(
                        *kind,
                        name,
                        Some(&def.connector),
                        Some(&config),
                        o.check,
                        ui,
                    )
                    .await?;
                }
                _ => {}
            }
        }
        for change in plan.iter().filter(|c| c.kind == "connection") {
            match change.action {
                "create" => {
                    self.connection_create(&change.name, &setup.connections[&change.name], ui)
                        .await?;
                }
                "update" => {
                    self.connection_replace(&change.name, &setup.connections[&change.name], ui)
                        .await?;
                }
                "delete" => self.connection_delete(&change.name).await?,
                _ => {}
            }
        }
        for change in plan.iter().filter(|c| c.action == "delete") {
            match change.kind {
                "source" => self.actor_delete(ActorKind::Source, &change.name).await?,
                "destination" => {
                    self.actor_delete(ActorKind::Destination, &change.name)
                        .await?
                }
                _ => {}
            }
        }
        Ok(ApplyPlan {
            changes: plan,
            applied: true,
            warnings,
        })
    }

    /// The setup in the store, secrets masked.
    pub async fn export(&self) -> anyhow::Result<Setup> {
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
        for c in self
            .store()
            .await?
            .list_connections()
            .await
            .map_err(store_error)?
        {
            setup
                .connections
                .insert(c.connection.name.clone(), ConnectionSpec::of(&c.connection));
        }
        Ok(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_come_from_the_environment() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        let text = "sources:\n  a:\n    connector: sample\n    config:\n      token: ${TOKEN}\n      note: \"cost $5, literal $${TOKEN}\"\n";
        let s = Setup::parse(text, "sluice.yaml", env).unwrap();
        assert_eq!(s.sources["a"].config["token"], "s3cret");
        assert_eq!(s.sources["a"].config["note"], "cost $5, literal ${TOKEN}");
        let e =
            Setup::parse("sources:\n  a:\n    connector: ${NOPE}\n", "f.yaml", env).unwrap_err();
        assert_eq!(e.message, "f.yaml uses ${NOPE}, which is not set");
    }

    #[test]
    fn unknown_keys_are_refused_and_yaml_round_trips() {
        let e = Setup::parse("sourcez: {}\n", "f.yaml", |_| None).unwrap_err();
        assert!(
            e.message.starts_with("f.yaml is not a sluice setup"),
            "{}",
            e.message
        );
        let text = "sources:\n  a:\n    connector: sample\n    config:\n      count: 3\ndestinations: {}\nconnections:\n  c:\n    source: a\n    destination: d\n    streams:\n    - users\n    sync_mode: incremental\n    schedule: every:1h\n    namespace: custom:raw\n    status: active\n    schema_change: propagate_fully\n";
        let s = Setup::parse(text, "f.yaml", |_| None).unwrap();
        assert_eq!(s.connections["c"].namespace.to_string(), "custom:raw");
        let again = Setup::parse(&s.to_yaml().unwrap(), "f.yaml", |_| None).unwrap();
        assert_eq!(again, s);
        assert_eq!(
            Setup::parse("", "f.yaml", |_| None).unwrap(),
            Setup::default()
        );
    }
}
