//! The `Api` that commands call. `Local` runs operations in this process
//! through `service`; a later `Remote` will send them to a daemon. Commands
//! are written against the trait, so they work both ways unchanged.

use crate::connector::docker::SweepReport;
use crate::connector::ExitStatus;
use crate::protocol::{AirbyteCatalog, ConnectionStatus, ConnectorSpecification};
use crate::service::connectors::ConnectorInfo;
use crate::service::sync::{SyncOutcome, SyncRequest};
use crate::service::{ConfigInput, Service, Ui};
use crate::settings::Settings;
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
        crate::connector::stop_all().await;
    }
}
