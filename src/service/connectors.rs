//! One protocol command at a time, for setting up and debugging connectors;
//! installing and listing connectors.

use super::catalog::{self, Generation, StreamSelection};
use super::{ConfigInput, Service, Ui};
use crate::connector::config::Secrets;
use crate::connector::registry;
use crate::connector::{ConnectorError, ConnectorRef, ExitStatus, LogSink, Role};
use crate::error::UserError;
use crate::protocol::{
    AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectionStatus, ConnectorSpecification,
};
use crate::sync::log::AttemptLog;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// A connector sluice can run without downloading anything.
pub type ConnectorInfo = crate::connector::registry::Installed;

impl Service {
    fn one_off_log(&self, secrets: Secrets, ui: &Ui) -> Arc<AttemptLog> {
        Arc::new(AttemptLog::memory(secrets, ui.echo()))
    }

    pub async fn connector_spec(
        &self,
        reference: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectorSpecification> {
        let c = self.resolve(reference)?;
        let log = self.one_off_log(Secrets::default(), ui);
        let cx = self.context(Role::Source, log, ui);
        self.spec_of(&c, &cx).await
    }

    /// Validates the config against the spec, then runs `check`.
    pub async fn connector_check(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<ConnectionStatus> {
        let (c, config, log) = self.prepared(reference, config, ui).await?;
        let cx = self.context(Role::Source, log.clone(), ui);
        c.connector
            .check(&config, &cx)
            .await
            .map_err(|e| redacted(e, &log))
            .map(|mut status| {
                status.message = status.message.map(|m| log.redact(&m));
                status
            })
            .with_context(|| format!("cannot check {}", c.reference))
    }

    pub async fn connector_discover(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<AirbyteCatalog> {
        let (c, config, log) = self.prepared(reference, config, ui).await?;
        let cx = self.context(Role::Source, log.clone(), ui);
        c.connector
            .discover(&config, &cx)
            .await
            .map_err(|e| redacted(e, &log))
            .with_context(|| format!("cannot discover the streams of {}", c.reference))
    }

    /// Resolves, installs, reads and validates: what every command needs.
    async fn prepared(
        &self,
        reference: &str,
        config: &ConfigInput,
        ui: &Ui,
    ) -> anyhow::Result<(super::Resolved, serde_json::Value, Arc<AttemptLog>)> {
        let c = self.resolve(reference)?;
        let config = config.load("config")?;
        let early = self.one_off_log(Secrets::default(), ui);
        let spec = self
            .spec_of(&c, &self.context(Role::Source, early, ui))
            .await?;
        let secrets = Service::validate(&spec, &config, "the config")?;
        Ok((c, config, self.one_off_log(secrets, ui)))
    }

    /// Runs `read` and copies its raw output to `out`. Without a catalog,
    /// every stream is read in full refresh.
    pub async fn connector_read(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog_file: Option<&PathBuf>,
        state_file: Option<&PathBuf>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus> {
        let (c, config, log) = self.prepared(reference, config, ui).await?;
        let cx = self.context(Role::Source, log.clone(), ui);
        let catalog = match catalog_file {
            Some(p) => read_configured(p)?,
            None => {
                let discovered = c.connector.discover(&config, &cx).await?;
                catalog::configure(
                    &discovered,
                    &StreamSelection::default(),
                    Generation {
                        sync_id: 1,
                        generation_id: 1,
                    },
                )?
            }
        };
        let state = match state_file {
            Some(p) => super::sync::read_state_file(p)?.map(|s| s.to_file_value()),
            None => None,
        };
        let mut running = c.connector.read(&config, &catalog, state, &cx).await?;
        let copied = tokio::select! {
            r = tokio::io::copy(&mut running.stdout, out) => r,
            _ = ui.cancel.cancelled() => Ok(0),
        };
        if copied.is_err() {
            running.process.kill();
        }
        let _ = out.flush().await;
        let status = running.process.wait().await?;
        copied.context("cannot write the connector's output")?;
        finished(
            &c.reference,
            "read",
            status,
            &running.stderr_tail.text(),
            &log,
        )
    }

    /// Runs `write` with `input` on its stdin and copies its output to `out`.
    pub async fn connector_write(
        &self,
        reference: &str,
        config: &ConfigInput,
        catalog_file: &Path,
        mut input: Box<dyn AsyncRead + Send + Unpin>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        ui: &Ui,
    ) -> anyhow::Result<ExitStatus> {
        let (c, config, log) = self.prepared(reference, config, ui).await?;
        let cx = self.context(Role::Destination, log.clone(), ui);
        let catalog = read_configured(catalog_file)?;
        let mut running = c.connector.write(&config, &catalog, &cx).await?;
        let mut stdin = running.stdin.take().expect("write has stdin");
        let feed = async {
            let r = tokio::io::copy(&mut input, &mut stdin).await;
            let _ = stdin.shutdown().await;
            drop(stdin);
            r
        };
        let (fed, copied) = tokio::join!(feed, tokio::io::copy(&mut running.stdout, out));
        let _ = out.flush().await;
        let status = running.process.wait().await?;
        copied.context("cannot write the connector's output")?;
        if let Err(e) = fed {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("cannot feed the connector's input");
            }
        }
        finished(
            &c.reference,
            "write",
            status,
            &running.stderr_tail.text(),
            &log,
        )
    }

    /// Installs a connector ahead of use (a Python package into its
    /// virtualenv, an image pulled unless the engine has it).
    pub async fn connector_install(
        &self,
        reference: &str,
        ui: &Ui,
    ) -> anyhow::Result<ConnectorInfo> {
        let parsed = parse(reference)?;
        let log: Arc<dyn LogSink> = self.one_off_log(Secrets::default(), ui);
        let cx = self.context(Role::Source, log, ui);
        registry::runtime_of(&parsed)
            .install(&parsed, &self.runtime_env(), &cx)
            .await?
            .ok_or_else(|| {
                UserError::new(format!(
                    "{parsed} is run by the {} runtime, which has nothing to install",
                    parsed.runtime()
                ))
                .into()
            })
    }

    /// Fetches a connector again now, whether it is there or not (an image).
    pub async fn connector_pull(&self, reference: &str, ui: &Ui) -> anyhow::Result<ConnectorInfo> {
        let parsed = parse(reference)?;
        let log: Arc<dyn LogSink> = self.one_off_log(Secrets::default(), ui);
        let cx = self.context(Role::Source, log, ui);
        registry::runtime_of(&parsed)
            .pull(&parsed, &self.runtime_env(), &cx)
            .await?
            .ok_or_else(|| {
                UserError::new(format!(
                    "{parsed} is not a Docker image; only docker:IMAGE:TAG connectors are pulled"
                ))
                .hint("`sluice connector install` installs Python connectors")
                .into()
            })
    }

    /// Built-in connectors and installed ones.
    pub fn connector_list(&self) -> Vec<ConnectorInfo> {
        registry::installed(&self.runtime_env())
    }
}

fn parse(reference: &str) -> Result<ConnectorRef, UserError> {
    reference
        .parse()
        .map_err(|e: crate::connector::RefError| UserError::new(e.to_string()))
}

fn read_configured(path: &Path) -> Result<ConfiguredAirbyteCatalog, UserError> {
    let bytes = std::fs::read(path)
        .map_err(|e| UserError::new(format!("cannot read the catalog {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        UserError::new(format!(
            "the catalog {} is not a configured catalog: {e}",
            path.display()
        ))
    })
}

fn redacted(e: ConnectorError, log: &AttemptLog) -> anyhow::Error {
    let config_error = e.is_config_error();
    let text = log.redact(&e.to_string());
    if config_error {
        let mut user = UserError::new(text);
        user.hint = e.hint().map(str::to_string);
        user.into()
    } else {
        anyhow::anyhow!(text)
    }
}

fn finished(
    reference: &ConnectorRef,
    command: &'static str,
    status: ExitStatus,
    stderr: &str,
    log: &AttemptLog,
) -> anyhow::Result<ExitStatus> {
    if status.success() {
        Ok(status)
    } else {
        Err(redacted(
            ConnectorError::Exited {
                connector: reference.to_string(),
                command,
                status,
                stderr: stderr.to_string(),
            },
            log,
        ))
    }
}
