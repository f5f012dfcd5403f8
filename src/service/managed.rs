//! Managed sources, destinations and connections: defined once in the job
//! store, run by name. Configs are validated against their connector's
//! spec; what answers the caller has its secrets masked unless asked.

use super::catalog::{self, Generation, StreamSelection};
use super::{ConfigInput, Service, Ui};
use crate::connector::config::{self, Secrets};
use crate::connector::Role;
use crate::error::UserError;
use crate::model::{ConnectionStatus, JobStatus, Schedule};
use crate::protocol::{self, AirbyteCatalog, ConnectionStatusKind, DestinationSyncMode, SyncMode};
use crate::store::{
    self, Actor, ActorFields, ActorKind, AppliedMigration, Backend, Connection, ConnectionFields,
    Store, StoreError,
};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::{Mapping, NamespaceRule};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A source or destination as the caller sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ActorView {
    pub kind: ActorKind,
    pub name: String,
    pub connector: String,
    /// Secrets masked unless asked for.
    pub config: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ActorView {
    fn of(a: &Actor, show_secrets: bool) -> Self {
        ActorView {
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

pub use crate::model::SchemaChangePolicy;

/// Everything a connection is, by names: what `create` takes, what `apply`
/// compares and what `export` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    pub source: String,
    pub destination: String,
    /// Stream names; empty means every stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<SyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_sync_mode: Option<DestinationSyncMode>,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub namespace: NamespaceRule,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default = "active")]
    pub status: ConnectionStatus,
    #[serde(default)]
    pub schema_change: SchemaChangePolicy,
}

fn active() -> ConnectionStatus {
    ConnectionStatus::Active
}

impl ConnectionSpec {
    pub fn new(source: &str, destination: &str) -> Self {
        ConnectionSpec {
            source: source.into(),
            destination: destination.into(),
            streams: Vec::new(),
            sync_mode: None,
            destination_sync_mode: None,
            schedule: Schedule::Manual,
            namespace: NamespaceRule::Source,
            prefix: String::new(),
            status: ConnectionStatus::Active,
            schema_change: SchemaChangePolicy::default(),
        }
    }

    /// The spec of a stored connection.
    pub fn of(c: &Connection) -> Self {
        ConnectionSpec {
            source: c.source.clone(),
            destination: c.destination.clone(),
            streams: c.streams.clone(),
            sync_mode: c.sync_mode,
            destination_sync_mode: c.destination_sync_mode,
            schedule: c.schedule.clone(),
            namespace: c.namespace.clone(),
            prefix: c.prefix.clone(),
            status: c.status,
            schema_change: c.schema_change,
        }
    }

    fn selection(&self) -> StreamSelection {
        StreamSelection {
            streams: self.streams.clone(),
            sync_mode: self.sync_mode,
            destination_sync_mode: self.destination_sync_mode,
        }
    }
}

/// What a field of a connection update changes; `None` keeps it.
#[derive(Debug, Clone, Default)]
pub struct ConnectionPatch {
    pub source: Option<String>,
    pub destination: Option<String>,
    pub streams: Option<Vec<String>>,
    pub sync_mode: Option<SyncMode>,
    pub destination_sync_mode: Option<DestinationSyncMode>,
    pub schedule: Option<Schedule>,
    pub namespace: Option<NamespaceRule>,
    pub prefix: Option<String>,
    pub schema_change: Option<SchemaChangePolicy>,
}

/// A connection as the caller sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    pub name: String,
    #[serde(flatten)]
    pub spec: ConnectionSpec,
    /// The streams of its catalog, with their modes.
    pub catalog_streams: Vec<CatalogStream>,
    pub last_job: Option<LastJob>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The configured catalog, in full (`get` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogStream {
    pub name: String,
    pub sync_mode: String,
    pub destination_sync_mode: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastJob {
    pub id: i64,
    pub status: JobStatus,
    pub at: i64,
}

impl ConnectionView {
    fn of(c: &Connection, last: Option<&store::Job>, full: bool) -> anyhow::Result<Self> {
        Ok(ConnectionView {
            name: c.name.clone(),
            spec: ConnectionSpec::of(c),
            catalog_streams: c
                .catalog
                .streams
                .iter()
                .map(|s| CatalogStream {
                    name: s.stream.descriptor().to_string(),
                    sync_mode: s.sync_mode.as_str().into(),
                    destination_sync_mode: s.destination_sync_mode.as_str().into(),
                })
                .collect(),
            last_job: last.map(|j| LastJob {
                id: j.id,
                status: j.status,
                at: j.ended_at.or(j.started_at).unwrap_or(j.created_at),
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
            catalog: full.then(|| serde_json::to_value(&c.catalog)).transpose()?,
        })
    }
}

/// What `db status` and `db migrate` say.
#[derive(Debug, Clone, Serialize)]
pub struct DbStatus {
    pub backend: Backend,
    /// The store's URL, its password masked.
    pub url: String,
    pub applied: Vec<AppliedMigration>,
}

/// A store error as the user sees it: names taken and things in use are
/// theirs to fix.
pub(crate) fn store_error(e: StoreError) -> anyhow::Error {
    match &e {
        StoreError::Exists { kind, .. } => {
            let hint = format!("choose another name, or change it with `sluice {kind} update`");
            UserError::new(e.to_string()).hint(hint).into()
        }
        StoreError::JobRunning { connection } => UserError::new(e.to_string())
            .hint(format!(
                "`sluice job list --connection {connection} --status running` shows it"
            ))
            .into(),
        StoreError::InUse { .. } => UserError::new(e.to_string())
            .hint("delete those connections first (`sluice connection delete NAME`)")
            .into(),
        StoreError::Open { .. } => {
            let hint = if e.to_string().contains("certificate") {
                "check the URL's sslmode and sslrootcert (the CA that signed the server's \
                 certificate); verify-full needs the host the certificate was issued for"
            } else {
                "check the database is running and --database-url / SLUICE_DATABASE_URL"
            };
            anyhow::Error::new(crate::error::Trouble::new(e.to_string(), hint))
        }
        _ => e.into(),
    }
}

pub(crate) fn not_found(kind: &str, name: &str) -> anyhow::Error {
    let list = match kind {
        "source" => "sluice source list",
        "destination" => "sluice destination list",
        _ => "sluice connection list",
    };
    UserError::new(format!("there is no {kind} named `{name}`"))
        .hint(format!("`{list}` shows them"))
        .into()
}

impl Service {
    /// The job store, opened (and migrated) on first use.
    pub async fn store(&self) -> anyhow::Result<&Store> {
        self.store
            .get_or_try_init(|| async {
                Store::open(&self.settings.store).await.map_err(store_error)
            })
            .await
    }

    pub async fn db_status(&self) -> anyhow::Result<DbStatus> {
        let s = self.store().await?;
        Ok(DbStatus {
            backend: s.backend(),
            url: s.location().to_string(),
            applied: s.applied_migrations().await.map_err(store_error)?,
        })
    }

    pub async fn actor(&self, kind: ActorKind, name: &str) -> anyhow::Result<Actor> {
        self.store()
            .await?
            .get_actor(kind, name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(kind.as_str(), name))
    }

    /// Validates a config against its connector's spec; its secret fields.
    async fn validated(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &Value,
        ui: &Ui,
    ) -> anyhow::Result<Vec<String>> {
        let c = self.resolve(connector)?;
        c.connector.preflight().await?;
        let log = Arc::new(AttemptLog::memory(Secrets::default(), ui.echo()));
        let cx = self.context(role(kind), log, ui);
        let spec = self.spec_of(&c, &cx).await?;
        let what = format!("the config of {} `{name}`", kind.as_str());
        config::validate(&spec.connection_specification, config, &what)?;
        Ok(config::secret_pointers(
            &spec.connection_specification,
            config,
        ))
    }

    /// Runs the connector's check; a FAILED answer is an error.
    async fn checked(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &Value,
        ui: &Ui,
    ) -> anyhow::Result<protocol::ConnectionStatus> {
        let status = self
            .connector_check(connector, &ConfigInput::Inline(config.clone()), ui)
            .await
            .with_context(|| format!("cannot check {} `{name}`", kind.as_str()))?;
        if status.status != ConnectionStatusKind::Succeeded {
            return Err(UserError::new(format!(
                "{} `{name}` failed its check: {}",
                kind.as_str(),
                status.message.as_deref().unwrap_or("no reason was given")
            ))
            .hint("fix the config, or save it anyway with --no-check")
            .into());
        }
        Ok(status)
    }

    pub async fn actor_create(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &ConfigInput,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView> {
        validate_name(kind.as_str(), name)?;
        let config = config.load("config")?;
        let store = self.store().await?;
        if store
            .get_actor(kind, name)
            .await
            .map_err(store_error)?
            .is_some()
        {
            return Err(store_error(StoreError::Exists {
                kind: kind.as_str(),
                name: name.into(),
            }));
        }
        let secret_paths = self.validated(kind, name, connector, &config, ui).await?;
        if check {
            self.checked(kind, name, connector, &config, ui).await?;
        }
        let a = store
            .create_actor(
                kind,
                &ActorFields {
                    name: name.into(),
                    connector: connector.into(),
                    config,
                    secret_paths,
                },
            )
            .await
            .map_err(store_error)?;
        Ok(ActorView::of(&a, false))
    }

    /// Changes the connector and/or the config. Fields left masked keep
    /// their stored secret, so `get` output can be edited and given back.
    #[allow(clippy::too_many_arguments)]
    pub async fn actor_update(
        &self,
        kind: ActorKind,
        name: &str,
        connector: Option<&str>,
        config: Option<&ConfigInput>,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView> {
        let old = self.actor(kind, name).await?;
        let connector = connector.unwrap_or(&old.connector).to_string();
        let config = match config {
            Some(c) => config::unmask(&c.load("config")?, &old.config),
            None => old.config.clone(),
        };
        let secret_paths = self.validated(kind, name, &connector, &config, ui).await?;
        if check {
            self.checked(kind, name, &connector, &config, ui).await?;
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
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(kind.as_str(), name))?;
        Ok(ActorView::of(&a, false))
    }

    pub async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> anyhow::Result<Vec<ActorView>> {
        let all = self
            .store()
            .await?
            .list_actors(kind)
            .await
            .map_err(store_error)?;
        Ok(all.iter().map(|a| ActorView::of(a, show_secrets)).collect())
    }

    pub async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> anyhow::Result<ActorView> {
        Ok(ActorView::of(&self.actor(kind, name).await?, show_secrets))
    }

    pub async fn actor_delete(&self, kind: ActorKind, name: &str) -> anyhow::Result<()> {
        let deleted = self
            .store()
            .await?
            .delete_actor(kind, name)
            .await
            .map_err(store_error)?;
        if !deleted {
            return Err(not_found(kind.as_str(), name));
        }
        Ok(())
    }

    pub async fn actor_check(
        &self,
        kind: ActorKind,
        name: &str,
        ui: &Ui,
    ) -> anyhow::Result<protocol::ConnectionStatus> {
        let a = self.actor(kind, name).await?;
        self.connector_check(&a.connector, &ConfigInput::Inline(a.config.clone()), ui)
            .await
            .with_context(|| format!("cannot check {} `{name}`", kind.as_str()))
    }

    pub async fn source_discover(&self, name: &str, ui: &Ui) -> anyhow::Result<AirbyteCatalog> {
        let a = self.actor(ActorKind::Source, name).await?;
        self.discover_actor(&a, ui).await
    }

    pub(crate) async fn discover_actor(
        &self,
        a: &Actor,
        ui: &Ui,
    ) -> anyhow::Result<AirbyteCatalog> {
        self.connector_discover(&a.connector, &ConfigInput::Inline(a.config.clone()), ui)
            .await
            .with_context(|| format!("cannot discover the streams of source `{}`", a.name))
    }

    // -- connections --------------------------------------------------------

    pub async fn connection(&self, name: &str) -> anyhow::Result<Connection> {
        self.store()
            .await?
            .get_connection(name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("connection", name))
    }

    /// The stored fields of a connection from its spec: names resolved, the
    /// source discovered and its catalog configured.
    async fn connection_fields(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionFields> {
        let source = self.actor(ActorKind::Source, &spec.source).await?;
        let destination = self
            .actor(ActorKind::Destination, &spec.destination)
            .await?;
        let discovered = self.discover_actor(&source, ui).await?;
        let configured = catalog::configure(
            &discovered,
            &spec.selection(),
            Generation {
                sync_id: 0,
                generation_id: 0,
            },
        )
        .map_err(|e| {
            let mut u = UserError::new(format!("connection `{name}`: {}", e.message));
            u.hint = e.hint;
            u
        })?;
        let mapping = Mapping {
            namespace: spec.namespace.clone(),
            prefix: spec.prefix.clone(),
        };
        mapping
            .destination_catalog(&configured)
            .map_err(UserError::new)?;
        Ok(ConnectionFields {
            name: name.into(),
            source_id: source.id,
            destination_id: destination.id,
            streams: spec.streams.clone(),
            sync_mode: spec.sync_mode,
            destination_sync_mode: spec.destination_sync_mode,
            catalog: configured,
            schedule: spec.schedule.clone(),
            namespace: spec.namespace.clone(),
            prefix: spec.prefix.clone(),
            status: spec.status,
            schema_change: spec.schema_change,
        })
    }

    pub async fn connection_create(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView> {
        validate_name("connection", name)?;
        let store = self.store().await?;
        if store
            .get_connection(name)
            .await
            .map_err(store_error)?
            .is_some()
        {
            return Err(store_error(StoreError::Exists {
                kind: "connection",
                name: name.into(),
            }));
        }
        let fields = self.connection_fields(name, spec, ui).await?;
        let c = store
            .create_connection(&fields)
            .await
            .map_err(store_error)?;
        ConnectionView::of(&c, None, false)
    }

    /// Replaces a connection with `spec`; the catalog is built again only
    /// when what it is built from changed.
    pub async fn connection_replace(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView> {
        let old = self.connection(name).await?;
        let old_spec = ConnectionSpec::of(&old);
        let fields = if old_spec.source == spec.source
            && old_spec.streams == spec.streams
            && old_spec.sync_mode == spec.sync_mode
            && old_spec.destination_sync_mode == spec.destination_sync_mode
            && old_spec.namespace == spec.namespace
            && old_spec.prefix == spec.prefix
        {
            let destination = self
                .actor(ActorKind::Destination, &spec.destination)
                .await?;
            ConnectionFields {
                name: name.into(),
                source_id: old.source_id,
                destination_id: destination.id,
                streams: spec.streams.clone(),
                sync_mode: old.sync_mode,
                destination_sync_mode: old.destination_sync_mode,
                catalog: old.catalog.clone(),
                schedule: spec.schedule.clone(),
                namespace: old.namespace.clone(),
                prefix: old.prefix.clone(),
                status: spec.status,
                schema_change: spec.schema_change,
            }
        } else {
            self.connection_fields(name, spec, ui).await?
        };
        let c = self
            .store()
            .await?
            .update_connection(&fields)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("connection", name))?;
        ConnectionView::of(&c, None, false)
    }

    pub async fn connection_update(
        &self,
        name: &str,
        patch: &ConnectionPatch,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView> {
        let old = self.connection(name).await?;
        let mut spec = ConnectionSpec::of(&old);
        let p = patch.clone();
        if let Some(v) = p.source {
            spec.source = v;
        }
        if let Some(v) = p.destination {
            spec.destination = v;
        }
        if let Some(v) = p.streams {
            spec.streams = v;
        }
        if let Some(v) = p.sync_mode {
            spec.sync_mode = Some(v);
        }
        if let Some(v) = p.destination_sync_mode {
            spec.destination_sync_mode = Some(v);
        }
        if let Some(v) = p.schedule {
            spec.schedule = v;
        }
        if let Some(v) = p.namespace {
            spec.namespace = v;
        }
        if let Some(v) = p.prefix {
            spec.prefix = v;
        }
        if let Some(v) = p.schema_change {
            spec.schema_change = v;
        }
        self.connection_replace(name, &spec, ui).await
    }

    pub async fn connection_list(&self) -> anyhow::Result<Vec<ConnectionView>> {
        let all = self
            .store()
            .await?
            .list_connections()
            .await
            .map_err(store_error)?;
        all.iter()
            .map(|s| ConnectionView::of(&s.connection, s.last_job.as_ref(), false))
            .collect()
    }

    pub async fn connection_get(&self, name: &str) -> anyhow::Result<ConnectionView> {
        let c = self.connection(name).await?;
        let store = self.store().await?;
        let last = store
            .list_jobs(&store::JobFilter {
                connection_id: Some(c.id),
                status: None,
                limit: 1,
            })
            .await
            .map_err(store_error)?;
        ConnectionView::of(&c, last.first(), true)
    }

    pub async fn connection_delete(&self, name: &str) -> anyhow::Result<()> {
        if !self
            .store()
            .await?
            .delete_connection(name)
            .await
            .map_err(store_error)?
        {
            return Err(not_found("connection", name));
        }
        Ok(())
    }

    pub async fn connection_set_status(&self, name: &str, active: bool) -> anyhow::Result<()> {
        let status = if active {
            ConnectionStatus::Active
        } else {
            ConnectionStatus::Inactive
        };
        if !self
            .store()
            .await?
            .set_connection_status(name, status)
            .await
            .map_err(store_error)?
        {
            return Err(not_found("connection", name));
        }
        Ok(())
    }
}

fn role(kind: ActorKind) -> Role {
    match kind {
        ActorKind::Source => Role::Source,
        ActorKind::Destination => Role::Destination,
    }
}

/// Names go in URLs, file names and YAML keys: keep them plain.
pub fn validate_name(kind: &str, name: &str) -> Result<(), UserError> {
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
            UserError::new(format!("`{name}` is not a valid {kind} name"))
                .hint("use letters, digits, `-`, `_` and `.` (not first), at most 100 characters"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        validate_name("source", "faker-1.prod_x").unwrap();
        for bad in ["", "-x", "a b", "a/b", ".x"] {
            let e = validate_name("source", bad).unwrap_err();
            assert!(e.message.contains("not a valid source name"), "{bad}");
        }
    }
}
