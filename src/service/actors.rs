//! Managed sources and destinations: defined once in the job store, used
//! by name. Configs are validated against their connector's spec; what
//! answers the caller has its secrets masked unless asked.

use super::{Call, Service};
use crate::api::{
    Actor as ActorView, ActorCreate, ActorKind, ActorRun, ActorUpdate, AirbyteCatalog, ApiError,
    CheckResult, CheckStatus, ConnectorRequest, Context as _,
};
use crate::connector::config::{self, Secrets};
use crate::connector::Role;
use crate::store::{self, Actor, ActorFields, StoreError};
use crate::sync::log::AttemptLog;
use serde_json::Value;
use std::sync::Arc;

impl ActorView {
    pub(crate) fn of(a: &Actor, show_secrets: bool) -> Self {
        ActorView {
            id: a.uuid.clone(),
            kind: a.kind,
            name: a.name.clone(),
            connector: a.connector.clone(),
            config: if show_secrets {
                a.config.clone()
            } else {
                config::mask_pointers(&a.config, &a.secret_paths)
            },
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A name or id that names nothing, with where to look.
pub(crate) fn not_found(kind: &str, key: &str) -> ApiError {
    let what = if store::parse_uuid(key).is_some() {
        "with id"
    } else {
        "named"
    };
    ApiError::not_found(format!("there is no {kind} {what} `{key}`"))
        .hint(format!("`sluice {kind} list` shows them"))
}

fn role(kind: ActorKind) -> Role {
    match kind {
        ActorKind::Source => Role::Source,
        ActorKind::Destination => Role::Destination,
    }
}

/// Names go in URLs, file names and YAML keys: keep them plain. A name
/// that reads as a UUID is refused: routes take a name or an id, and
/// must know which they were given.
pub fn validate_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if store::parse_uuid(name).is_some() {
        return Err(ApiError::user(format!(
            "`{name}` is not a valid {kind} name: it reads as a UUID, and a {kind} is found by its name or its id"
        ))
        .hint("choose a name that is not a UUID"));
    }
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(
            ApiError::user(format!("`{name}` is not a valid {kind} name"))
                .hint("use letters, digits, `-`, `_` and `.` (not first), at most 100 characters"),
        )
    }
}

impl Service {
    pub async fn actor(&self, kind: ActorKind, name: &str) -> Result<Actor, ApiError> {
        self.store()
            .await?
            .get_actor(kind, name)
            .await?
            .ok_or_else(|| not_found(kind.as_str(), name))
    }

    /// Validates a config against its connector's spec; its secret fields.
    pub(crate) async fn validated(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &Value,
        call: &Call,
    ) -> Result<Vec<String>, ApiError> {
        let c = self.resolve(connector, call)?;
        c.plays(role(kind))?;
        c.connector.preflight().await?;
        let log = Arc::new(AttemptLog::memory(Secrets::default(), call.echo()));
        let cx = self.context(role(kind), log, call);
        let spec = self.spec_of(&c, &cx).await?;
        let what = format!("the config of {kind} `{name}`");
        config::validate(&spec.connection_specification, config, &what)?;
        // A stored config outlives the directory it was given in, and a
        // daemon runs in none of the client's: paths must be whole.
        let mut relative = Vec::new();
        config::visit_paths(
            &spec.connection_specification,
            &mut config.clone(),
            &mut |field, text| {
                if std::path::Path::new(text.as_str()).is_relative() {
                    relative.push(format!("`{field}` ({text})"));
                }
            },
        );
        if !relative.is_empty() {
            return Err(ApiError::user(format!(
                "{what} has a relative path: {}",
                relative.join(", ")
            ))
            .hint("give an absolute path: a stored config is used from other directories, and a daemon's"));
        }
        Ok(config::secret_pointers(
            &spec.connection_specification,
            config,
        ))
    }

    /// Runs the connector's check; a FAILED answer is an error.
    pub(crate) async fn checked(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &Value,
        call: &Call,
    ) -> Result<CheckResult, ApiError> {
        let status = self
            .check_config(connector, config, call)
            .await
            .with_context(|| format!("cannot check {kind} `{name}`"))?;
        if status.status != CheckStatus::Succeeded {
            return Err(ApiError::user(format!(
                "{kind} `{name}` failed its check: {}",
                status.message.as_deref().unwrap_or("no reason was given")
            ))
            .hint("fix the config, or save it anyway with --no-check"));
        }
        Ok(status)
    }

    async fn check_config(
        &self,
        connector: &str,
        config: &Value,
        call: &Call,
    ) -> Result<CheckResult, ApiError> {
        let req = ConnectorRequest {
            connector: connector.to_string(),
            config: Some(config.clone()),
            options: call.options.clone(),
        };
        self.connector_check(&req, call).await
    }

    pub async fn actor_create(
        &self,
        req: &ActorCreate,
        call: &Call,
    ) -> Result<ActorView, ApiError> {
        let (kind, name) = (req.kind, req.name.as_str());
        validate_name(kind.as_str(), name)?;
        let config = super::config_or_empty(&req.config);
        let store = self.store().await?;
        if store.get_actor(kind, name).await?.is_some() {
            return Err(StoreError::Exists {
                kind: kind.as_str(),
                name: name.into(),
            }
            .into());
        }
        let secret_paths = self
            .validated(kind, name, &req.connector, &config, call)
            .await?;
        if req.check {
            self.checked(kind, name, &req.connector, &config, call)
                .await?;
        }
        let a = store
            .create_actor(
                kind,
                &ActorFields {
                    name: name.into(),
                    connector: req.connector.clone(),
                    config,
                    secret_paths,
                },
            )
            .await?;
        Ok(ActorView::of(&a, false))
    }

    /// Changes the connector and/or the config. Fields left masked keep
    /// their stored secret, so `get` output can be edited and given back.
    pub async fn actor_update(
        &self,
        req: &ActorUpdate,
        call: &Call,
    ) -> Result<ActorView, ApiError> {
        let kind = req.kind;
        let old = self.actor(kind, &req.name).await?;
        let name = old.name.as_str();
        let connector = req.connector.clone().unwrap_or(old.connector.clone());
        let config = match &req.config {
            Some(c) => config::unmask(c, &old.config),
            None => old.config.clone(),
        };
        let secret_paths = self
            .validated(kind, name, &connector, &config, call)
            .await?;
        if req.check {
            self.checked(kind, name, &connector, &config, call).await?;
        }
        let a = self
            .store()
            .await?
            .update_actor(
                kind,
                &ActorFields {
                    name: name.into(),
                    connector,
                    config,
                    secret_paths,
                },
            )
            .await?
            .ok_or_else(|| not_found(kind.as_str(), name))?;
        Ok(ActorView::of(&a, false))
    }

    pub async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> Result<Vec<ActorView>, ApiError> {
        let all = self.store().await?.list_actors(kind).await?;
        Ok(all.iter().map(|a| ActorView::of(a, show_secrets)).collect())
    }

    pub async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> Result<ActorView, ApiError> {
        Ok(ActorView::of(&self.actor(kind, name).await?, show_secrets))
    }

    pub async fn actor_delete(&self, kind: ActorKind, key: &str) -> Result<(), ApiError> {
        let name = self.actor(kind, key).await?.name;
        if !self.store().await?.delete_actor(kind, &name).await? {
            return Err(not_found(kind.as_str(), key));
        }
        Ok(())
    }

    pub async fn actor_check(&self, req: &ActorRun, call: &Call) -> Result<CheckResult, ApiError> {
        let a = self.actor(req.kind, &req.name).await?;
        self.check_config(&a.connector, &a.config, call)
            .await
            .with_context(|| format!("cannot check {} `{}`", req.kind, req.name))
    }

    pub async fn source_discover(
        &self,
        req: &ActorRun,
        call: &Call,
    ) -> Result<AirbyteCatalog, ApiError> {
        let a = self.actor(ActorKind::Source, &req.name).await?;
        self.discover_actor(&a, call).await
    }

    pub(crate) async fn discover_actor(
        &self,
        a: &Actor,
        call: &Call,
    ) -> Result<AirbyteCatalog, ApiError> {
        let req = ConnectorRequest {
            connector: a.connector.clone(),
            config: Some(a.config.clone()),
            options: call.options.clone(),
        };
        self.connector_discover(&req, call)
            .await
            .with_context(|| format!("cannot discover the streams of source `{}`", a.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        validate_name("source", "faker-1.prod_x").unwrap();
        validate_name("source", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f").unwrap();
        for bad in [
            "",
            "-x",
            "a b",
            "a/b",
            ".x",
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
            "0F1E2D3C4B5A49788695A4B3C2D1E0F9",
        ] {
            let e = validate_name("source", bad).unwrap_err();
            assert!(e.message.contains("not a valid source name"), "{bad}");
        }
    }
}
