//! The `Api` that commands call. `Local` runs operations in this process
//! through `service`; a later `Remote` will send them to a daemon. Commands
//! are written against the trait, so they work both ways unchanged.

use crate::connector::registry::SweepReport;
use crate::connector::ExitStatus;
use crate::protocol::{AirbyteCatalog, ConnectionStatus, ConnectorSpecification};
use crate::service::apply::{ApplyOptions, ApplyPlan, Setup};
use crate::service::connectors::ConnectorInfo;
use crate::service::jobs::{JobRequest, JobView};
use crate::service::managed::{
    ActorView, ConnectionPatch, ConnectionSpec, ConnectionView, DbStatus,
};
use crate::service::sync::{SyncOutcome, SyncRequest};
use crate::service::{ConfigInput, Service, Ui};
use crate::settings::Settings;
use crate::store::{ActorKind, Job, StoredState};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};

#[async_trait]
pub trait Api: Send + Sync {
    /// Runs one sync to its end.
    async fn sync(&self, req: SyncRequest, ui: Ui) -> anyhow::Result<SyncOutcome>;

    async fn connector_spec(
        &self,
        reference: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectorSpecification>;

    async fn connector_check(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionStatus>;

    async fn connector_discover(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<AirbyteCatalog>;

    async fn connector_read(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog: Option<&PathBuf>,
        state: Option<&PathBuf>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus>;

    async fn connector_write(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog: &Path,
        input: Box<dyn AsyncRead + Send + Unpin>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus>;

    async fn connector_install(&self, reference: &str, ui: &Ui) -> anyhow::Result<ConnectorInfo>;

    /// Pulls a Docker connector's image.
    async fn connector_pull(&self, reference: &str, ui: &Ui) -> anyhow::Result<ConnectorInfo>;

    async fn connector_list(&self) -> anyhow::Result<Vec<ConnectorInfo>>;

    /// Removes connector containers that were left behind.
    async fn system_sweep(&self) -> anyhow::Result<SweepReport>;

    /// Stops, at once, the connectors this client started that would
    /// outlive it; for a second Ctrl-C.
    async fn stop_connectors(&self);

    /// The job store: its backend, where it is, its migrations (applied
    /// first if needed).
    async fn db_status(&self) -> anyhow::Result<DbStatus>;

    async fn actor_create(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &ConfigInput,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView>;

    #[allow(clippy::too_many_arguments)]
    async fn actor_update(
        &self,
        kind: ActorKind,
        name: &str,
        connector: Option<&str>,
        config: Option<&ConfigInput>,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView>;

    async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> anyhow::Result<Vec<ActorView>>;

    async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> anyhow::Result<ActorView>;

    async fn actor_delete(&self, kind: ActorKind, name: &str) -> anyhow::Result<()>;

    async fn actor_check(
        &self,
        kind: ActorKind,
        name: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionStatus>;

    async fn source_discover(&self, name: &str, ui: &Ui) -> anyhow::Result<AirbyteCatalog>;

    async fn connection_create(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView>;

    async fn connection_update(
        &self,
        name: &str,
        patch: &ConnectionPatch,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView>;

    async fn connection_list(&self) -> anyhow::Result<Vec<ConnectionView>>;

    async fn connection_get(&self, name: &str) -> anyhow::Result<ConnectionView>;

    async fn connection_delete(&self, name: &str) -> anyhow::Result<()>;

    async fn connection_set_status(&self, name: &str, active: bool) -> anyhow::Result<()>;

    /// Runs a sync, reset or refresh job now, to its end.
    async fn connection_job(&self, req: JobRequest, ui: Ui) -> anyhow::Result<JobView>;

    async fn job_list(
        &self,
        connection: Option<&str>,
        status: Option<crate::model::JobStatus>,
        limit: i64,
    ) -> anyhow::Result<Vec<Job>>;

    async fn job_get(&self, id: i64) -> anyhow::Result<JobView>;

    async fn job_logs(&self, id: i64, attempt: Option<i64>) -> anyhow::Result<String>;

    async fn state_get(&self, connection: &str) -> anyhow::Result<Option<StoredState>>;

    async fn state_set(&self, connection: &str, state: serde_json::Value) -> anyhow::Result<()>;

    async fn state_reset(&self, connection: &str, streams: &[String]) -> anyhow::Result<()>;

    /// What applying `setup` would change; applied unless `dry_run`.
    async fn apply(
        &self,
        setup: &Setup,
        options: ApplyOptions,
        ui: &Ui,
    ) -> anyhow::Result<ApplyPlan>;

    /// The current sources, destinations and connections, secrets masked.
    async fn export(&self) -> anyhow::Result<Setup>;
}

/// Operations run in this process.
pub struct Local {
    service: Service,
}

impl Local {
    pub fn new(settings: Settings) -> Self {
        Local {
            service: Service::new(settings),
        }
    }
}

#[async_trait]
impl Api for Local {
    async fn sync(&self, req: SyncRequest, ui: Ui) -> anyhow::Result<SyncOutcome> {
        self.service.sync(req, ui).await
    }

    async fn connector_spec(
        &self,
        reference: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectorSpecification> {
        self.service.connector_spec(reference, ui).await
    }

    async fn connector_check(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionStatus> {
        self.service.connector_check(reference, config, ui).await
    }

    async fn connector_discover(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<AirbyteCatalog> {
        self.service.connector_discover(reference, config, ui).await
    }

    async fn connector_read(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog: Option<&PathBuf>,
        state: Option<&PathBuf>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus> {
        self.service
            .connector_read(reference, config, catalog, state, out, ui)
            .await
    }

    async fn connector_write(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog: &Path,
        input: Box<dyn AsyncRead + Send + Unpin>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus> {
        self.service
            .connector_write(reference, config, catalog, input, out, ui)
            .await
    }

    async fn connector_install(&self, reference: &str, ui: &Ui) -> anyhow::Result<ConnectorInfo> {
        self.service.connector_install(reference, ui).await
    }

    async fn connector_pull(&self, reference: &str, ui: &Ui) -> anyhow::Result<ConnectorInfo> {
        self.service.connector_pull(reference, ui).await
    }

    async fn connector_list(&self) -> anyhow::Result<Vec<ConnectorInfo>> {
        Ok(self.service.connector_list())
    }

    async fn system_sweep(&self) -> anyhow::Result<SweepReport> {
        self.service.system_sweep().await
    }

    async fn stop_connectors(&self) {
        crate::connector::registry::stop_run(&self.service.run).await;
    }

    async fn db_status(&self) -> anyhow::Result<DbStatus> {
        self.service.db_status().await
    }

    async fn actor_create(
        &self,
        kind: ActorKind,
        name: &str,
        connector: &str,
        config: &ConfigInput,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView> {
        self.service
            .actor_create(kind, name, connector, config, check, ui)
            .await
    }

    async fn actor_update(
        &self,
        kind: ActorKind,
        name: &str,
        connector: Option<&str>,
        config: Option<&ConfigInput>,
        check: bool,
        ui: &Ui,
    ) -> anyhow::Result<ActorView> {
        self.service
            .actor_update(kind, name, connector, config, check, ui)
            .await
    }

    async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> anyhow::Result<Vec<ActorView>> {
        self.service.actor_list(kind, show_secrets).await
    }

    async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> anyhow::Result<ActorView> {
        self.service.actor_get(kind, name, show_secrets).await
    }

    async fn actor_delete(&self, kind: ActorKind, name: &str) -> anyhow::Result<()> {
        self.service.actor_delete(kind, name).await
    }

    async fn actor_check(
        &self,
        kind: ActorKind,
        name: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionStatus> {
        self.service.actor_check(kind, name, ui).await
    }

    async fn source_discover(&self, name: &str, ui: &Ui) -> anyhow::Result<AirbyteCatalog> {
        self.service.source_discover(name, ui).await
    }

    async fn connection_create(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView> {
        self.service.connection_create(name, spec, ui).await
    }

    async fn connection_update(
        &self,
        name: &str,
        patch: &ConnectionPatch,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionView> {
        self.service.connection_update(name, patch, ui).await
    }

    async fn connection_list(&self) -> anyhow::Result<Vec<ConnectionView>> {
        self.service.connection_list().await
    }

    async fn connection_get(&self, name: &str) -> anyhow::Result<ConnectionView> {
        self.service.connection_get(name).await
    }

    async fn connection_delete(&self, name: &str) -> anyhow::Result<()> {
        self.service.connection_delete(name).await
    }

    async fn connection_set_status(&self, name: &str, active: bool) -> anyhow::Result<()> {
        self.service.connection_set_status(name, active).await
    }

    async fn connection_job(&self, req: JobRequest, ui: Ui) -> anyhow::Result<JobView> {
        self.service.connection_job(req, ui).await
    }

    async fn job_list(
        &self,
        connection: Option<&str>,
        status: Option<crate::model::JobStatus>,
        limit: i64,
    ) -> anyhow::Result<Vec<Job>> {
        self.service.job_list(connection, status, limit).await
    }

    async fn job_get(&self, id: i64) -> anyhow::Result<JobView> {
        self.service.job_get(id).await
    }

    async fn job_logs(&self, id: i64, attempt: Option<i64>) -> anyhow::Result<String> {
        self.service.job_logs(id, attempt).await
    }

    async fn state_get(&self, connection: &str) -> anyhow::Result<Option<StoredState>> {
        self.service.state_get(connection).await
    }

    async fn state_set(&self, connection: &str, state: serde_json::Value) -> anyhow::Result<()> {
        self.service.state_set(connection, state).await
    }

    async fn state_reset(&self, connection: &str, streams: &[String]) -> anyhow::Result<()> {
        self.service.state_reset(connection, streams).await
    }

    async fn apply(
        &self,
        setup: &Setup,
        options: ApplyOptions,
        ui: &Ui,
    ) -> anyhow::Result<ApplyPlan> {
        self.service.apply(setup, options, ui).await
    }

    async fn export(&self) -> anyhow::Result<Setup> {
        self.service.export().await
    }
}
