//! The operations sluice offers, whoever asks: the in-process `Api` and
//! the daemon's HTTP handlers. They take and give the Api's types and
//! answer with its `ApiError`; what they have to say while they run goes
//! out as events through the [`Call`]. Nothing here prints, parses flags
//! or reads a caller's files.

pub mod actors;
pub mod apply;
pub mod catalog;
pub mod configs;
pub mod connections;
pub mod connectors;
pub mod jobs;
pub mod notify;
pub mod retention;
pub mod sync;
pub mod system;

use crate::api::{ApiError, Context as _, Event, RunOptions};
use crate::connector::config::{self, Secrets};
use crate::connector::{
    self, Connector, ConnectorRef, InstallProgress, LogSink, Role, RunContext, RuntimeEnv,
};
use crate::error::UserError;
use crate::protocol::{ConnectorSpecification, LogLevel};
use crate::settings::Settings;
use crate::sync::log::Echo;
use crate::sync::{Progress, SyncObserver};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// One call of an operation: the run it is, the options it runs with,
/// where what it says goes, and whether it was asked to stop.
#[derive(Clone)]
pub struct Call {
    /// What the connectors it starts belong to (see `RunContext::run`).
    pub run: String,
    pub options: RunOptions,
    pub cancel: CancellationToken,
    events: Option<UnboundedSender<Event>>,
    /// Why `cancel` fired, when it was not the caller's own cancel (a
    /// daemon stopping, a lease lost): what the stopped attempt records.
    stop_reason: Arc<std::sync::OnceLock<crate::model::Failure>>,
}

impl Call {
    pub fn new(
        run: String,
        options: RunOptions,
        cancel: CancellationToken,
        events: UnboundedSender<Event>,
    ) -> Self {
        Call {
            run,
            options,
            cancel,
            events: Some(events),
            stop_reason: Arc::default(),
        }
    }

    /// A call nobody listens to.
    pub fn quiet() -> Self {
        Call {
            run: connector::registry::new_run_id(),
            options: RunOptions::default(),
            cancel: CancellationToken::new(),
            events: None,
            stop_reason: Arc::default(),
        }
    }

    /// Cancels the call, saying why; the first reason given stays.
    pub fn stop(&self, why: crate::model::Failure) {
        let _ = self.stop_reason.set(why);
        self.cancel.cancel();
    }

    /// Why the call was stopped, if [`Call::stop`] said.
    pub fn stop_reason(&self) -> Option<&crate::model::Failure> {
        self.stop_reason.get()
    }

    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.events {
            // A caller that stopped listening does not stop the work.
            let _ = tx.send(event);
        }
    }

    pub fn step(&self, message: impl Into<String>) {
        self.send(Event::Step {
            message: message.into(),
        });
    }

    pub fn notice(&self, level: LogLevel, message: impl Into<String>) {
        self.send(Event::Notice {
            level,
            message: message.into(),
        });
    }

    /// Log lines as events, when the caller asked for them.
    pub(crate) fn echo(&self) -> Option<Echo> {
        let floor = self.options.logs?;
        let tx = self.events.clone()?;
        Some(Box::new(
            move |origin: &str, level: LogLevel, message: &str| {
                if level <= floor {
                    let at = humantime::format_rfc3339_millis(std::time::SystemTime::now());
                    let _ = tx.send(Event::Log {
                        at: at.to_string(),
                        origin: origin.to_string(),
                        level,
                        message: message.to_string(),
                    });
                }
            },
        ))
    }
}

impl SyncObserver for Call {
    fn progress(&self, p: &Progress) {
        self.send(Event::Progress {
            streams: p.streams.clone(),
            elapsed_ms: p.elapsed.as_millis() as u64,
        });
    }

    fn event(&self, level: LogLevel, message: &str) {
        self.notice(level, message);
    }
}

impl InstallProgress for Call {
    fn step(&self, message: &str) {
        Call::step(self, message);
    }
}

/// The operations, with the settings they run under.
#[derive(Clone)]
pub struct Service {
    pub settings: Settings,
    /// The job store, opened on first use: commands that need none never
    /// touch it.
    store: Arc<tokio::sync::OnceCell<crate::store::Store>>,
}

/// A resolved connector.
pub struct Resolved {
    pub reference: ConnectorRef,
    pub connector: Arc<dyn Connector>,
}

impl Service {
    pub fn new(settings: Settings) -> Self {
        Service {
            settings,
            store: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// What runtimes run a call's connectors with: its options over this
    /// service's, checked.
    pub fn runtime_env(&self, call: &Call) -> Result<RuntimeEnv, ApiError> {
        let options = self.settings.runtime.overlaid(&call.options.runtime);
        options.check()?;
        Ok(RuntimeEnv {
            install_dir: self.settings.connectors_dir.clone(),
            options,
        })
    }

    /// Parses and resolves a reference; an unknown one is the user's to fix.
    pub fn resolve(&self, reference: &str, call: &Call) -> Result<Resolved, ApiError> {
        let parsed = parse_reference(reference)?;
        let connector = connector::resolve(&parsed, &self.runtime_env(call)?).map_err(|e| {
            ApiError::from(e).hint("`sluice connector list` shows the built-in connectors")
        })?;
        Ok(Resolved {
            reference: parsed,
            connector,
        })
    }

    /// A run context for one connector command of a call.
    pub fn context(&self, role: Role, log: Arc<dyn LogSink>, call: &Call) -> RunContext {
        let mut cx = RunContext::new(&call.run, role, log);
        cx.progress = Arc::new(call.clone());
        cx.cancel = call.cancel.clone();
        cx
    }

    /// The connector's spec, after installing it if needed.
    pub async fn spec_of(
        &self,
        c: &Resolved,
        cx: &RunContext,
    ) -> Result<ConnectorSpecification, ApiError> {
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
    ) -> Result<Secrets, ApiError> {
        config::validate(&spec.connection_specification, config, what)?;
        Ok(Secrets::from_config(&spec.connection_specification, config))
    }
}

impl Resolved {
    /// Refuses a connector in a role it cannot play (`--destination
    /// sample`), before anything runs.
    pub fn plays(&self, role: Role) -> Result<(), ApiError> {
        match self.connector.plays(role) {
            Some(false) => Err(ApiError::user(format!(
                "{} cannot be the {role}: it is a {} only",
                self.reference,
                match role {
                    Role::Source => Role::Destination,
                    Role::Destination => Role::Source,
                }
            ))
            .hint("`sluice connector list` shows what each built-in connector is")),
            _ => Ok(()),
        }
    }

    /// Runs the connector's check when it is cheap (a built-in connector),
    /// so a config that cannot work (no password, a directory that cannot
    /// be written) is said before any record is read.
    pub async fn check_cheaply(
        &self,
        config: &Value,
        cx: &RunContext,
        what: &str,
    ) -> Result<(), ApiError> {
        if !self.connector.checks_cheaply() {
            return Ok(());
        }
        let status = self.connector.check(config, cx).await?;
        if status.status == crate::protocol::ConnectionStatusKind::Succeeded {
            return Ok(());
        }
        Err(ApiError::user(format!(
            "{what} fails its check: {}",
            status.message.as_deref().unwrap_or("no reason was given")
        ))
        .hint(format!(
            "`sluice connector check {} --config FILE` runs it alone with the config in FILE",
            self.reference
        )))
    }
}

/// A config as given: `{}` when none was.
pub fn config_or_empty(config: &Option<Value>) -> Value {
    config
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()))
}

/// A reference the user wrote, parsed.
pub fn parse_reference(reference: &str) -> Result<ConnectorRef, ApiError> {
    reference
        .parse()
        .map_err(|e: connector::RefError| UserError::new(e.to_string()).into())
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
