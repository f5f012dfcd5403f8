//! The runtimes connectors run in, and the one place that knows them all.
//!
//! A runtime owns the references of its scheme (`docker:IMAGE:TAG`), the
//! options it reads (each with its `SLUICE_*` variable), and what it can do
//! besides starting a connector: install one ahead of use, pull it, list
//! what is installed, sweep what a killed sluice left behind, stop what a
//! run started. Everything here asks the runtimes; nothing here knows a
//! runtime's details. A new runtime is its own module plus one line in
//! [`super::RUNTIMES`].

use super::{Connector, ConnectorError, ConnectorRef, RunContext};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use utoipa::ToSchema;

/// Options for runtimes, by runtime and option name, as text:
/// `{"docker": {"memory": "1g", "network": "host"}}`. What a request says
/// wins over the environment, which wins over a runtime's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeOptions(pub BTreeMap<String, BTreeMap<String, String>>);

impl RuntimeOptions {
    pub fn get(&self, runtime: &str, option: &str) -> Option<&str> {
        self.0.get(runtime)?.get(option).map(String::as_str)
    }

    pub fn set(&mut self, runtime: &str, option: &str, value: impl Into<String>) {
        self.0
            .entry(runtime.to_string())
            .or_default()
            .insert(option.to_string(), value.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }

    /// These options with `over`'s on top.
    pub fn overlaid(&self, over: &RuntimeOptions) -> RuntimeOptions {
        let mut out = self.clone();
        for (runtime, options) in &over.0 {
            for (name, value) in options {
                out.set(runtime, name, value.clone());
            }
        }
        out
    }

    /// These options with every path option made absolute against the
    /// current directory: a relative path means nothing to whoever runs
    /// the connector later (a daemon has no meaningful current directory).
    pub fn with_absolute_paths(&self) -> std::io::Result<RuntimeOptions> {
        let mut out = self.clone();
        for runtime in super::RUNTIMES {
            for option in runtime.options().iter().filter(|o| o.path) {
                if let Some(value) = self.get(runtime.name(), option.name) {
                    let absolute = std::path::absolute(value)?;
                    out.set(runtime.name(), option.name, absolute.to_string_lossy());
                }
            }
        }
        Ok(out)
    }

    /// The options every runtime reads from the environment.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> RuntimeOptions {
        let mut out = RuntimeOptions::default();
        for runtime in super::RUNTIMES {
            for option in runtime.options() {
                if let Some(value) = env(option.env).filter(|v| !v.trim().is_empty()) {
                    out.set(runtime.name(), option.name, value);
                }
            }
        }
        out
    }

    /// Checks that every option names a runtime and an option it has, and
    /// that the runtime can read its value.
    pub fn check(&self) -> Result<(), ConnectorError> {
        for (name, options) in &self.0 {
            let runtime = runtime(name).ok_or_else(|| {
                ConnectorError::Unknown(format!(
                    "there is no runtime named `{name}` to give options to; the runtimes are {}",
                    names().join(", ")
                ))
            })?;
            for option in options.keys() {
                if !runtime.options().iter().any(|o| o.name == option) {
                    return Err(ConnectorError::Unknown(format!(
                        "the {name} runtime has no option `{option}`; its options are {}",
                        runtime
                            .options()
                            .iter()
                            .map(|o| o.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
            runtime.check_options(self)?;
        }
        Ok(())
    }
}

/// One option a runtime reads.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    /// The environment variable that sets it.
    pub env: &'static str,
    pub help: &'static str,
    /// A path on the machine of whoever gives it: made absolute there,
    /// before it travels (see [`RuntimeOptions::with_absolute_paths`]).
    pub path: bool,
}

/// What a runtime runs with: where it keeps what it installs, and the
/// options of this request.
#[derive(Debug, Clone)]
pub struct RuntimeEnv {
    /// Managed virtualenvs, cached specs and other installed things.
    pub install_dir: PathBuf,
    pub options: RuntimeOptions,
}

impl RuntimeEnv {
    /// An option's value, if given.
    pub fn option(&self, runtime: &str, name: &str) -> Option<&str> {
        self.options.get(runtime, name)
    }

    /// An option parsed with `parse`; an error names the option and its
    /// variable.
    pub fn parsed<T>(
        &self,
        runtime: &dyn Runtime,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConnectorError> {
        let Some(text) = self.option(runtime.name(), name) else {
            return Ok(None);
        };
        parse(text).map(Some).map_err(|message| {
            let env = runtime
                .options()
                .iter()
                .find(|o| o.name == name)
                .map_or("", |o| o.env);
            ConnectorError::Unavailable {
                connector: format!("the {} runtime", runtime.name()),
                message: format!("{} option `{name}`: {message}", runtime.name()),
                hint: format!("fix the flag or {env}"),
            }
        })
    }
}

/// A connector that is installed, or built in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = ConnectorInfo)]
pub struct Installed {
    pub reference: String,
    /// The runtime that runs it.
    pub runtime: String,
    /// `source`, `destination`, `source, destination`, or empty when unknown.
    pub kind: String,
    pub version: String,
    pub description: String,
    /// Where it lives on this machine, when it is installed.
    #[schema(value_type = Option<String>)]
    pub location: Option<PathBuf>,
}

/// One thing a sweep looked at (a container).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Swept {
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub job: Option<String>,
    pub attempt: Option<String>,
    pub role: Option<String>,
    /// The pid of the sluice that started it.
    pub pid: Option<u32>,
    /// Why it was removed, or kept.
    pub reason: String,
}

/// What a sweep removed and what it kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SweepReport {
    pub removed: Vec<Swept>,
    pub kept: Vec<Swept>,
}

/// A way of running connectors.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Its scheme: `docker` in `docker:IMAGE:TAG`.
    fn name(&self) -> &'static str;

    /// How its references are written: `docker:IMAGE:TAG`.
    fn form(&self) -> &'static str;

    /// The options it reads.
    fn options(&self) -> &'static [OptionSpec] {
        &[]
    }

    /// Checks its options' values (see [`RuntimeEnv::parsed`]).
    fn check_options(&self, _options: &RuntimeOptions) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Checks what follows the scheme and returns it in its one form.
    fn parse(&self, target: &str) -> Result<String, String>;

    /// A connector for one of its references.
    fn connector(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError>;

    /// Installs a connector ahead of use. `None`: this runtime has nothing
    /// to install.
    async fn install(
        &self,
        _reference: &ConnectorRef,
        _env: &RuntimeEnv,
        _cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        Ok(None)
    }

    /// Fetches a connector again even when it is there (an image pull).
    /// `None`: this runtime pulls nothing.
    async fn pull(
        &self,
        _reference: &ConnectorRef,
        _env: &RuntimeEnv,
        _cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        Ok(None)
    }

    /// The connectors it has, built in or installed.
    fn installed(&self, _env: &RuntimeEnv) -> Vec<Installed> {
        Vec::new()
    }

    /// Removes what killed sluice processes left behind. `None`: this
    /// runtime leaves nothing behind (processes die with sluice).
    async fn sweep(&self, _env: &RuntimeEnv) -> Result<Option<SweepReport>, ConnectorError> {
        Ok(None)
    }

    /// Stops at once what `run` started that would outlive sluice.
    async fn stop_run(&self, _run: &str) {}
}

/// The runtime of that name.
pub fn runtime(name: &str) -> Option<&'static dyn Runtime> {
    super::RUNTIMES.iter().copied().find(|r| r.name() == name)
}

fn names() -> Vec<&'static str> {
    super::RUNTIMES.iter().map(|r| r.name()).collect()
}

/// The ways to write a reference, for errors and help.
pub fn forms() -> Vec<&'static str> {
    super::RUNTIMES.iter().map(|r| r.form()).collect()
}

/// The runtime of a reference.
pub fn runtime_of(reference: &ConnectorRef) -> &'static dyn Runtime {
    runtime(reference.runtime()).expect("a parsed reference names a runtime")
}

/// Resolves a reference to a runnable connector.
pub fn resolve(
    reference: &ConnectorRef,
    env: &RuntimeEnv,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    runtime_of(reference).connector(reference, env)
}

/// Every connector the runtimes have.
pub fn installed(env: &RuntimeEnv) -> Vec<Installed> {
    super::RUNTIMES
        .iter()
        .flat_map(|r| r.installed(env))
        .collect()
}

/// Sweeps with every runtime that leaves things behind.
pub async fn sweep(env: &RuntimeEnv) -> Result<SweepReport, ConnectorError> {
    let mut all = SweepReport::default();
    for runtime in super::RUNTIMES {
        if let Some(report) = runtime.sweep(env).await? {
            all.removed.extend(report.removed);
            all.kept.extend(report.kept);
        }
    }
    Ok(all)
}

/// Stops at once what `run` started, in every runtime.
pub async fn stop_run(run: &str) {
    futures_util::future::join_all(super::RUNTIMES.iter().map(|r| r.stop_run(run))).await;
}

/// A new run's id: unique among this process's runs and across processes.
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!(
        "{}-{millis}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_against_the_runtimes() {
        let mut o = RuntimeOptions::default();
        o.set("docker", "memory", "1g");
        o.check().unwrap();
        o.set("docker", "colour", "blue");
        let e = o.check().unwrap_err().to_string();
        assert!(
            e.contains("the docker runtime has no option `colour`"),
            "{e}"
        );
        let mut o = RuntimeOptions::default();
        o.set("ftp", "x", "1");
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("there is no runtime named `ftp`"), "{e}");
        let mut o = RuntimeOptions::default();
        o.set("docker", "memory", "lots");
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("docker option `memory`"), "{e}");
    }

    #[test]
    fn requests_win_over_the_environment() {
        let env = RuntimeOptions::from_env(|k| match k {
            "SLUICE_DOCKER_MEMORY" => Some("1g".into()),
            "SLUICE_DOCKER_CPUS" => Some("0.5".into()),
            _ => None,
        });
        assert_eq!(env.get("docker", "memory"), Some("1g"));
        let mut request = RuntimeOptions::default();
        request.set("docker", "memory", "512m");
        let both = env.overlaid(&request);
        assert_eq!(both.get("docker", "memory"), Some("512m"));
        assert_eq!(both.get("docker", "cpus"), Some("0.5"));
    }
}
