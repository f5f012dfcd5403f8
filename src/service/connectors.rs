//! One protocol command at a time, for setting up and debugging connectors;
//! installing and listing connectors.

use super::catalog::{self, Generation, StreamSelection};
use super::{config_or_empty, parse_reference, Call, Resolved, Service};
use crate::api::{
    ApiError, CheckResult, ConnectorExit, ConnectorInfo, ConnectorRequest, Context as _,
    ReadRequest, WriteRequest,
};
use crate::connector::config::Secrets;
use crate::connector::registry;
use crate::connector::{ConnectorError, ConnectorRef, ExitStatus, LogSink, Role};
use crate::error::UserError;
use crate::protocol::{AirbyteCatalog, ConnectorSpecification, StateSnapshot};
use crate::sync::log::AttemptLog;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

impl Service {
    fn one_off_log(&self, secrets: Secrets, call: &Call) -> Arc<AttemptLog> {
        Arc::new(AttemptLog::memory(secrets, call.echo()))
    }

    pub async fn connector_spec(
        &self,
        req: &ConnectorRequest,
        call: &Call,
    ) -> Result<ConnectorSpecification, ApiError> {
        let c = self.resolve(&req.connector, call)?;
        let log = self.one_off_log(Secrets::default(), call);
        let cx = self.context(Role::Source, log, call);
        self.spec_of(&c, &cx).await
    }

    /// Validates the config against the spec, then runs `check`.
    pub async fn connector_check(
        &self,
        req: &ConnectorRequest,
        call: &Call,
    ) -> Result<CheckResult, ApiError> {
        let (c, config, log) = self.prepared(&req.connector, &req.config, call).await?;
        let cx = self.context(Role::Source, log.clone(), call);
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
        req: &ConnectorRequest,
        call: &Call,
    ) -> Result<AirbyteCatalog, ApiError> {
        let (c, config, log) = self.prepared(&req.connector, &req.config, call).await?;
        let cx = self.context(Role::Source, log.clone(), call);
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
        config: &Option<Value>,
        call: &Call,
    ) -> Result<(Resolved, Value, Arc<AttemptLog>), ApiError> {
        let c = self.resolve(reference, call)?;
        let config = config_or_empty(config);
        let early = self.one_off_log(Secrets::default(), call);
        let spec = self
            .spec_of(&c, &self.context(Role::Source, early, call))
            .await?;
        let secrets = Service::validate(&spec, &config, "the config")?;
        Ok((c, config, self.one_off_log(secrets, call)))
    }

    /// Runs `read` and copies its raw output to `out`. Without a catalog,
    /// every stream is read in full refresh.
    pub async fn connector_read(
        &self,
        req: &ReadRequest,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        call: &Call,
    ) -> Result<ConnectorExit, ApiError> {
        let (c, config, log) = self.prepared(&req.connector, &req.config, call).await?;
        let cx = self.context(Role::Source, log.clone(), call);
        let catalog = match &req.catalog {
            Some(c) => c.clone(),
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
        let state = match &req.state {
            Some(v) => StateSnapshot::from_file_value(v.clone())
                .map_err(|e| UserError::new(format!("the state is not valid: {e}")))?
                .map(|s| s.to_file_value()),
            None => None,
        };
        let mut running = c.connector.read(&config, &catalog, state, &cx).await?;
        let copied = tokio::select! {
            r = tokio::io::copy(&mut running.stdout, out) => r,
            _ = call.cancel.cancelled() => Ok(0),
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
        req: &WriteRequest,
        mut input: Box<dyn AsyncRead + Send + Unpin>,
        out: &mut (dyn AsyncWrite + Send + Unpin),
        call: &Call,
    ) -> Result<ConnectorExit, ApiError> {
        let (c, config, log) = self.prepared(&req.connector, &req.config, call).await?;
        let cx = self.context(Role::Destination, log.clone(), call);
        let mut running = c.connector.write(&config, &req.catalog, &cx).await?;
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
                return Err(ApiError::from(e).context("cannot feed the connector's input"));
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
        call: &Call,
    ) -> Result<ConnectorInfo, ApiError> {
        self.fetch(reference, call, false).await
    }

    /// Fetches a connector again now, whether it is there or not (an image).
    pub async fn connector_pull(
        &self,
        reference: &str,
        call: &Call,
    ) -> Result<ConnectorInfo, ApiError> {
        self.fetch(reference, call, true).await
    }

    /// Installs or pulls, as the connector's runtime does them.
    async fn fetch(
        &self,
        reference: &str,
        call: &Call,
        pull: bool,
    ) -> Result<ConnectorInfo, ApiError> {
        let parsed = parse_reference(reference)?;
        let log: Arc<dyn LogSink> = self.one_off_log(Secrets::default(), call);
        let cx = self.context(Role::Source, log, call);
        let runtime = registry::runtime_of(&parsed);
        let env = self.runtime_env(call)?;
        let fetched = if pull {
            runtime.pull(&parsed, &env, &cx).await?
        } else {
            runtime.install(&parsed, &env, &cx).await?
        };
        fetched.ok_or_else(|| match pull {
            true => ApiError::user(format!(
                "{parsed} is not a Docker image; only docker:IMAGE:TAG connectors are pulled"
            ))
            .hint("`sluice connector install` installs Python connectors"),
            false => ApiError::user(format!(
                "{parsed} is run by the {} runtime, which has nothing to install",
                parsed.runtime()
            )),
        })
    }

    /// Built-in connectors and installed ones.
    pub fn connector_list(&self) -> Result<Vec<ConnectorInfo>, ApiError> {
        Ok(registry::installed(&self.runtime_env(&Call::quiet())?))
    }
}

/// A connector's error with the secrets it may quote taken out.
fn redacted(e: ConnectorError, log: &AttemptLog) -> ApiError {
    let mut error = ApiError::from(e);
    error.message = log.redact(&error.message);
    error
}

fn finished(
    reference: &ConnectorRef,
    command: &'static str,
    status: ExitStatus,
    stderr: &str,
    log: &AttemptLog,
) -> Result<ConnectorExit, ApiError> {
    if status.success() {
        Ok(ConnectorExit {
            code: status.code,
            signal: status.signal,
        })
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
