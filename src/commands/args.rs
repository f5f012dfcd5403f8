//! Arguments several commands share: the global options, how output is
//! printed, the Docker runtime's flags and the sync modes.

use crate::api::{DestinationSyncMode, RunOptions, RuntimeOptions, SyncMode};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// How to print results: tables for people, JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Print no progress and no informational messages.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Show connector logs as they come (-vv for debug lines too).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Where sluice keeps logs and installed connectors
    /// [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL
    /// [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// How runtimes run connectors, on every command that runs them: the
/// Docker runtime's flags, and any runtime's options by name.
#[derive(Debug, Clone, Default, Args)]
pub struct RuntimeArgs {
    /// An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g.
    /// docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*].
    #[arg(
        long = "runtime-option",
        value_name = "RUNTIME.NAME=VALUE",
        value_parser = runtime_option,
        help_heading = "Runtimes"
    )]
    pub options: Vec<(String, String, String)>,

    /// When to pull a Docker connector's image
    /// [env: SLUICE_DOCKER_PULL] [default: missing].
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        help_heading = "Docker connectors"
    )]
    pub pull: Option<PullArg>,

    /// The memory limit of each connector container, e.g. 512m or 2g
    /// [env: SLUICE_DOCKER_MEMORY] [default: 2g].
    #[arg(long, value_name = "SIZE", help_heading = "Docker connectors")]
    pub memory: Option<String>,

    /// The CPUs each connector container may use, e.g. 0.5
    /// [env: SLUICE_DOCKER_CPUS] [default: 2].
    #[arg(long, value_name = "CPUS", help_heading = "Docker connectors")]
    pub cpus: Option<String>,

    /// The Docker network connector containers join: host (the machine's
    /// network, as Airbyte runs them), bridge (the engine's own, isolated),
    /// or a network's name, to reach a database in another container
    /// [env: SLUICE_DOCKER_NETWORK] [default: host].
    #[arg(long, value_name = "NAME", help_heading = "Docker connectors")]
    pub network: Option<String>,

    /// A host directory mounted at /local in connector containers, where
    /// file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT].
    #[arg(long, value_name = "DIR", help_heading = "Docker connectors")]
    pub local_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullArg {
    /// Before the first use in each run.
    Always,
    /// When the engine does not have the image.
    Missing,
    /// Never; a missing image is an error.
    Never,
}

impl RuntimeArgs {
    /// The runtime options these flags give; the named flags win over
    /// `--runtime-option`. A relative `--local-root` is made absolute
    /// here, where it was written.
    pub fn runtime(&self) -> anyhow::Result<RuntimeOptions> {
        let mut o = RuntimeOptions::default();
        for (runtime, name, value) in &self.options {
            o.set(runtime, name, value.clone());
        }
        let mut set = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                o.set("docker", name, v);
            }
        };
        set("pull", self.pull.map(|p| possible_value(&p)));
        set("memory", self.memory.clone());
        set("cpus", self.cpus.clone());
        set("network", self.network.clone());
        let local_root = match &self.local_root {
            Some(dir) => Some(
                std::path::absolute(dir)
                    .map_err(|e| anyhow::anyhow!("--local-root {}: {e}", dir.display()))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            None => None,
        };
        set("local_root", local_root);
        Ok(o)
    }
}

/// `RUNTIME.NAME=VALUE`.
fn runtime_option(text: &str) -> Result<(String, String, String), String> {
    let form = || format!("`{text}` is not RUNTIME.NAME=VALUE (e.g. docker.memory=1g)");
    let (key, value) = text.split_once('=').ok_or_else(form)?;
    let (runtime, name) = key.split_once('.').ok_or_else(form)?;
    if runtime.is_empty() || name.is_empty() {
        return Err(form());
    }
    Ok((runtime.into(), name.into(), value.into()))
}

/// The name clap shows for a value.
pub fn possible_value(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .expect("not skipped")
        .get_name()
        .to_string()
}

impl GlobalArgs {
    /// The run options of a command: runtime flags, and the log lines to
    /// hear (-v: info and up; -vv: all).
    pub fn run_options(&self, runtime: Option<&RuntimeArgs>) -> anyhow::Result<RunOptions> {
        Ok(RunOptions {
            runtime: match runtime {
                Some(d) => d.runtime()?,
                None => RuntimeOptions::default(),
            },
            logs: match self.verbose {
                0 => None,
                1 => Some(crate::api::LogLevel::Info),
                _ => Some(crate::api::LogLevel::Trace),
            },
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncModeArg {
    FullRefresh,
    Incremental,
}

impl From<SyncModeArg> for SyncMode {
    fn from(m: SyncModeArg) -> SyncMode {
        match m {
            SyncModeArg::FullRefresh => SyncMode::FullRefresh,
            SyncModeArg::Incremental => SyncMode::Incremental,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DestinationSyncModeArg {
    Overwrite,
    Append,
    AppendDedup,
}

impl From<DestinationSyncModeArg> for DestinationSyncMode {
    fn from(m: DestinationSyncModeArg) -> DestinationSyncMode {
        match m {
            DestinationSyncModeArg::Overwrite => DestinationSyncMode::Overwrite,
            DestinationSyncModeArg::Append => DestinationSyncMode::Append,
            DestinationSyncModeArg::AppendDedup => DestinationSyncMode::AppendDedup,
        }
    }
}
