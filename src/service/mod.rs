//! The operations sluice offers, whoever asks: the in-process `Api` today,
//! the daemon's HTTP handlers later. Nothing here prints or parses flags.

pub mod apply;
pub mod catalog;
pub mod connectors;
pub mod jobs;
pub mod managed;
pub mod sync;
pub mod system;

use crate::connector::config::{self, Secrets};
use crate::connector::{
    self, Connector, ConnectorRef, InstallProgress, LogSink, Role, RunContext, RuntimeEnv,
};
use crate::error::UserError;
use crate::protocol::ConnectorSpecification;
use crate::settings::Settings;
use crate::sync::log::Echo;
use crate::sync::SyncObserver;
use anyhow::Context as _;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A connector config as given: inline JSON, a file, or nothing (`{}`).
#[derive(Debug, Clone)]
pub enum ConfigInput {
    None,
    Inline(Value),
    File(PathBuf),
}

impl ConfigInput {
    /// `FILE|JSON`: text that starts with `{` is JSON, anything else a path.
    pub fn parse(arg: Option<&str>) -> Result<ConfigInput, UserError> {
        let Some(arg) = arg else {
            return Ok(ConfigInput::None);
        };
        let trimmed = arg.trim_start();
        if trimmed.starts_with('{') {
            serde_json::from_str(trimmed)
                .map(ConfigInput::Inline)
                .map_err(|e| {
                    UserError::new(format!("the config is not valid JSON: {e}"))
                        .hint("quote it for the shell: --source-config '{\"count\": 10}'")
                })
        } else {
            Ok(ConfigInput::File(PathBuf::from(arg)))
        }
    }

    /// The config value; `what` names it in errors ("source config").
    pub fn load(&self, what: &str) -> Result<Value, UserError> {
        match self {
            ConfigInput::None => Ok(Value::Object(Default::default())),
            ConfigInput::Inline(v) => Ok(v.clone()),
            ConfigInput::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    UserError::new(format!(
                        "cannot read the {what} file {}: {e}",
                        path.display()
                    ))
                })?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    UserError::new(format!(
                        "the {what} file {} is not valid JSON: {e}",
                        path.display()
                    ))
                })
            }
        }
    }
}

/// Shows a log line live: origin, level, message.
pub type EchoFn = Arc<dyn Fn(&str, crate::protocol::LogLevel, &str) + Send + Sync>;

/// How the caller wants to hear about long work.
#[derive(Clone)]
pub struct Ui {
    pub observer: Arc<dyn SyncObserver>,
    pub progress: Arc<dyn InstallProgress>,
    /// Connector and engine log lines, shown live (verbose mode).
    pub echo: Option<EchoFn>,
    pub cancel: CancellationToken,
}

impl Ui {
    /// No display at all.
    pub fn quiet() -> Self {
        Ui {
            observer: Arc::new(crate::sync::NoObserver),
            progress: Arc::new(connector::NoLog),
            echo: None,
            cancel: CancellationToken::new(),
        }
    }

    pub(crate) fn echo(&self) -> Option<Echo> {
        self.echo
            .clone()
            .map(|f| Box::new(move |o: &str, l, m: &str| f(o, l, m)) as Echo)
    }
}

/// The operations, with the settings they run under.
#[derive(Clone)]
pub struct Service {
    pub settings: Settings,
    /// What the connectors this service starts belong to, for stopping
    /// them at once.
    pub run: String,
    /// The job store, opened on first use: commands that need none never
    /// touch it.
    store: Arc<tokio::sync::OnceCell<crate::store::Store>>,
}

/// A resolved connector with its spec.
pub struct Resolved {
    pub reference: ConnectorRef,
    pub connector: Arc<dyn Connector>,
}

impl Service {
    pub fn new(settings: Settings) -> Self {
        Service {
            settings,
            run: connector::registry::new_run_id(),
            store: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// What runtimes run connectors with.
    pub fn runtime_env(&self) -> RuntimeEnv {
        RuntimeEnv {
            install_dir: self.settings.connectors_dir.clone(),
            options: self.settings.runtime.clone(),
        }
    }

    /// Parses and resolves a reference; an unknown one is the user's to fix.
    pub fn resolve(&self, reference: &str) -> anyhow::Result<Resolved> {
        let parsed: ConnectorRef = reference
            .parse()
            .map_err(|e: connector::RefError| UserError::new(e.to_string()))?;
        let connector = connector::resolve(&parsed, &self.runtime_env()).map_err(|e| {
            UserError::new(e.to_string())
                .hint("`sluice connector list` shows the built-in connectors")
        })?;
        Ok(Resolved {
            reference: parsed,
            connector,
        })
    }

    /// A run context for one-off connector commands.
    pub fn context(&self, role: Role, log: Arc<dyn LogSink>, ui: &Ui) -> RunContext {
        let mut cx = RunContext::new(&self.run, role, log);
        cx.progress = ui.progress.clone();
        cx
    }

    /// The connector's spec, after installing it if needed.
    pub async fn spec_of(
        &self,
        c: &Resolved,
        cx: &RunContext,
    ) -> anyhow::Result<ConnectorSpecification> {
        c.connector.prepare(cx).await?;
        c.connector
            .spec(cx)
            .await
            .with_context(|| format!("cannot read the spec of {}", c.reference))
    }

    /// Validates a config against a spec and collects its secrets.
    pub fn validate(
        spec: &ConnectorSpecification,
        config: &Value,
        what: &str,
    ) -> anyhow::Result<Secrets> {
        config::validate(&spec.connection_specification, config, what)?;
        Ok(Secrets::from_config(&spec.connection_specification, config))
    }
}

/// A place for one-off logs (spec, check, discover): the logs directory.
pub fn one_off_log_path(settings: &Settings, what: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    settings
        .logs_dir()
        .join(format!("{what}-{stamp}-{}.log", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_args_are_json_or_paths() {
        assert!(matches!(
            ConfigInput::parse(Some(" {\"a\":1}")).unwrap(),
            ConfigInput::Inline(_)
        ));
        assert!(matches!(
            ConfigInput::parse(Some("conf.json")).unwrap(),
            ConfigInput::File(_)
        ));
        let e = ConfigInput::parse(Some("{nope")).unwrap_err();
        assert!(e.message.starts_with("the config is not valid JSON"));
        let e = ConfigInput::File("/no/such/file.json".into())
            .load("source config")
            .unwrap_err();
        assert!(e
            .message
            .contains("cannot read the source config file /no/such/file.json"));
    }
}
