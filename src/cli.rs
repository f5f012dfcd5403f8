//! The command line: the top-level clap definitions, and the completions and
//! man pages generated from them. Each command's own arguments live beside
//! its `run()` in `commands/`.

use crate::commands;
use crate::connector::RuntimeOptions;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

const ABOUT: &str = "Move data from sources to destinations over the Airbyte Protocol.";

const LONG_ABOUT: &str = "\
Move data from sources to destinations over the Airbyte Protocol, as one binary.

sluice runs Airbyte connectors (Docker images, Python packages from PyPI, local
programs) and its own native connectors. `sluice sync` runs one sync inline:
nothing else to start.";

const EXAMPLES: &str = "\
Examples:
  # Generated records into JSON Lines files, one per stream
  sluice sync --source sample --source-config '{\"count\": 1000}' \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}'

  # A real Airbyte connector from PyPI, incrementally, keeping state
  sluice sync --source python:airbyte-source-faker==7.2.1 --source-config faker.json \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}' \\
      --sync-mode incremental --state state.json

  # An Airbyte connector image, into a local directory
  sluice sync --source docker:airbyte/source-faker:6.2.1 --source-config '{\"count\": 100}' \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}' --memory 1g

  # What a connector needs, and what it offers
  sluice connector spec python:airbyte-source-faker==7.2.1
  sluice connector discover sample --config '{\"streams\": [\"users\", \"orders\"]}'";

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

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

/// How Docker connectors run: on every command that runs connectors.
#[derive(Debug, Clone, Default, Args)]
pub struct DockerArgs {
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

    /// The Docker network connector containers join, to reach a database
    /// in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge].
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

impl DockerArgs {
    /// The Docker runtime's options these flags give.
    pub fn flags(&self) -> RuntimeOptions {
        let mut o = RuntimeOptions::default();
        let mut set = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                o.set("docker", name, v);
            }
        };
        set(
            "pull",
            self.pull.map(|p| {
                p.to_possible_value()
                    .expect("not skipped")
                    .get_name()
                    .to_string()
            }),
        );
        set("memory", self.memory.clone());
        set("cpus", self.cpus.clone());
        set("network", self.network.clone());
        set(
            "local_root",
            self.local_root
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        );
        o
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Sync(commands::sync::SyncArgs),
    #[command(subcommand)]
    Connector(commands::connector::ConnectorCommand),
    #[command(subcommand)]
    Source(commands::source::SourceCommand),
    #[command(subcommand)]
    Destination(commands::source::DestinationCommand),
    #[command(subcommand)]
    Connection(commands::connection::ConnectionCommand),
    #[command(subcommand)]
    Job(commands::job::JobCommand),
    #[command(subcommand)]
    State(commands::state::StateCommand),
    #[command(subcommand)]
    Db(commands::db::DbCommand),
    Apply(commands::apply::ApplyArgs),
    Export(commands::apply::ExportArgs),
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    Completions(commands::completions::CompletionsArgs),
    /// Writes completions/ and man/ from these definitions (for packagers).
    #[command(hide = true)]
    GenerateAssets(GenerateAssetsArgs),
}

impl Command {
    /// What the command line says about Docker connectors.
    pub fn docker_flags(&self) -> RuntimeOptions {
        match self {
            Command::Sync(a) => a.docker.flags(),
            Command::Connector(c) => c.docker().map(DockerArgs::flags).unwrap_or_default(),
            Command::Source(c) => c.docker().map(DockerArgs::flags).unwrap_or_default(),
            Command::Destination(c) => c.docker().map(DockerArgs::flags).unwrap_or_default(),
            Command::Connection(c) => c.docker().map(DockerArgs::flags).unwrap_or_default(),
            Command::Apply(a) => a.docker.flags(),
            _ => RuntimeOptions::default(),
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateAssetsArgs {
    /// The directory holding completions/ and man/.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

/// The shells completions are generated for, with their file names.
pub const COMPLETION_FILES: [(clap_complete::Shell, &str); 3] = [
    (clap_complete::Shell::Bash, "sluice.bash"),
    (clap_complete::Shell::Zsh, "_sluice"),
    (clap_complete::Shell::Fish, "sluice.fish"),
];

/// Writes `completions/` and `man/` under `root`; returns the files written.
pub fn write_assets(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let completions = root.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, name) in COMPLETION_FILES {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut buf);
        let path = completions.join(name);
        std::fs::write(&path, buf)?;
        written.push(path);
    }
    let man = root.join("man");
    std::fs::create_dir_all(&man)?;
    let mut cmd = Cli::command();
    cmd.build();
    write_man(&cmd, "sluice", &man, &mut written)?;
    Ok(written)
}

/// One man page per command and subcommand: sluice.1, sluice-sync.1, ...
fn write_man(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let page = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
