//! The command line: the top-level clap definitions, what runs each
//! command, and the completions and man pages generated from them. Each
//! command's own arguments live beside its `run()` in `commands/`, the
//! shared ones in `commands/args.rs`; `commands` never imports this.

use crate::commands::{self, args::GlobalArgs, Ctx, ExitClass};
use crate::settings::{Flags, Settings};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};

const ABOUT: &str = "Move data from sources to destinations over the Airbyte Protocol.";

const LONG_ABOUT: &str = "\
Move data from sources to destinations over the Airbyte Protocol, as one binary.

sluice runs Airbyte connectors (Docker images, Python packages from PyPI, local
programs) and its own native connectors. `sluice sync` runs one sync inline:
nothing else to start. `sluice daemon start` adds a daemon that holds the job
store and serves an HTTP API; the same commands then talk to it.";

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
  sluice connector discover sample --config '{\"streams\": [\"users\", \"orders\"]}'

Exit status:
  0  it worked
  1  a sync or job ran and failed (or a connector's check said FAILED)
  2  something to fix in the command, a config, a file or the setup
  3  the daemon named by --host or SLUICE_HOST did not answer";

/// The EXIT STATUS section of the man page `sluice.1`.
const EXIT_STATUS_ROFF: &str = "\
.SH \"EXIT STATUS\"
.TP
0
It worked.
.TP
1
A sync or job ran and failed, or a connector's check said FAILED.
.TP
2
Something to fix in the command, a config, a file or the setup; nothing ran.
.TP
3
The daemon named by --host or SLUICE_HOST did not answer.
";

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
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
    #[command(subcommand)]
    Daemon(commands::daemon::DaemonCommand),
    Ui(commands::webui::UiArgs),
    Completions(commands::completions::CompletionsArgs),
    /// Writes completions/ and man/ from these definitions (for packagers).
    #[command(hide = true)]
    GenerateAssets(GenerateAssetsArgs),
}

impl Cli {
    /// Runs the parsed command line; returns how the process should exit.
    pub async fn run(self) -> anyhow::Result<ExitClass> {
        let global = self.global.clone();
        match &self.command {
            Command::GenerateAssets(args) => {
                let written = write_assets(&args.root)?;
                if !global.quiet {
                    eprintln!(
                        "Wrote {} files under {}.",
                        written.len(),
                        args.root.display()
                    );
                }
                return Ok(ExitClass::Success);
            }
            Command::Completions(args) => return commands::completions::run(args),
            _ => {}
        }
        let settings = Settings::from_env(&Flags {
            data_dir: global.data_dir.clone(),
            database_url: global.database_url.clone(),
        })
        .map_err(crate::api::ApiError::from)?;
        let in_process = match &self.command {
            Command::Daemon(cmd) => {
                use commands::daemon::DaemonCommand as D;
                if !matches!(cmd, D::Status(_)) {
                    refuse_other_host(&global, &settings)?;
                }
                match cmd {
                    D::Run(args) => {
                        let defaults = crate::daemon::control::Options::default();
                        let options = crate::daemon::control::Options {
                            listen: args.listen.clone(),
                            socket: args.socket.clone(),
                            max_jobs: args.max_jobs.unwrap_or(defaults.max_jobs),
                            grace: args.grace,
                            lease: args.lease,
                            retention: args.retention,
                            jitter: args.jitter,
                        };
                        crate::daemon::control::run(settings, options).await?;
                        return Ok(ExitClass::Success);
                    }
                    D::Start(args) => {
                        let pid = crate::daemon::control::start(&settings, &args.to_args()).await?;
                        let log = crate::daemon::control::log_path(&settings);
                        commands::daemon::started(&global, pid, &log)?;
                        return Ok(ExitClass::Success);
                    }
                    D::Stop(args) => {
                        let wait = std::time::Duration::from_secs(args.wait);
                        let pid = crate::daemon::control::stop(&settings, wait).await?;
                        commands::daemon::stopped(&global, pid)?;
                        return Ok(ExitClass::Success);
                    }
                    D::Token(args) => {
                        let token = crate::daemon::control::token(&settings, args.rotate)?;
                        commands::daemon::show_token(&global, &token)?;
                        return Ok(ExitClass::Success);
                    }
                    D::Status(_) => false,
                }
            }
            // Ad-hoc work on this machine's files and connectors.
            Command::Sync(_) => true,
            Command::Connector(cmd) => cmd.streams_bytes(),
            _ => false,
        };
        let api: Box<dyn crate::api::Api> = if in_process {
            Box::new(crate::api::Local::new(settings))
        } else {
            choose_api(&global, settings).await?
        };
        let ctx = Ctx { api, global };
        match self.command {
            Command::Sync(args) => commands::sync::run(&ctx, args).await,
            Command::Connector(cmd) => commands::connector::run(&ctx, cmd).await,
            Command::System(cmd) => commands::system::run(&ctx, cmd).await,
            Command::Source(cmd) => commands::source::run_source(&ctx, cmd).await,
            Command::Destination(cmd) => commands::source::run_destination(&ctx, cmd).await,
            Command::Connection(cmd) => commands::connection::run(&ctx, cmd).await,
            Command::Job(cmd) => commands::job::run(&ctx, cmd).await,
            Command::State(cmd) => commands::state::run(&ctx, cmd).await,
            Command::Db(cmd) => commands::db::run(&ctx, cmd).await,
            Command::Apply(args) => commands::apply::apply(&ctx, args).await,
            Command::Export(args) => commands::apply::export(&ctx, args).await,
            Command::Daemon(_) => commands::daemon::status(&ctx).await,
            Command::Ui(args) => commands::webui::run(&ctx, args, open_browser).await,
            Command::Completions(_) | Command::GenerateAssets(_) => {
                unreachable!("handled above")
            }
        }
    }
}

/// Opens `url` in this machine's browser (`open` on macOS, `xdg-open`
/// elsewhere); an error when there is no desktop to open it on.
fn open_browser(url: &str) -> std::io::Result<()> {
    use std::process::{Command, Stdio};
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        if !desktop {
            return Err(std::io::Error::other("no desktop session"));
        }
        "xdg-open"
    };
    let status = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("{opener} failed: {status}")))
    }
}

/// `daemon run|start|stop|token` work on this machine's data dir: with
/// another daemon named, say so rather than act on the local one.
fn refuse_other_host(global: &GlobalArgs, settings: &Settings) -> anyhow::Result<()> {
    let Some(host) = global.host() else {
        return Ok(());
    };
    let local = crate::daemon::control::default_endpoint(settings);
    if crate::api::Endpoint::parse(&host).ok() == Some(local) {
        return Ok(());
    }
    Err(crate::api::ApiError::user(format!(
        "`sluice daemon` runs, starts, stops and keeps the token of this machine's daemon, not the one at {host}"
    ))
    .hint("run it on the daemon's machine, or unset --host and SLUICE_HOST; `sluice daemon status` works from anywhere")
    .into())
}

/// The Api a command talks to: the daemon `--host` or `SLUICE_HOST` names;
/// else the data dir's daemon when one answers on its socket; else this
/// process.
async fn choose_api(
    global: &GlobalArgs,
    settings: Settings,
) -> anyhow::Result<Box<dyn crate::api::Api>> {
    use crate::api::{Endpoint, Remote};
    let token = global.token();
    if let Some(host) = global.host() {
        return Ok(Box::new(Remote::new(Endpoint::parse(&host)?, token)?));
    }
    let socket = crate::daemon::control::socket_path(&settings);
    if socket.exists() {
        let remote = Remote::new(Endpoint::Unix(socket), token)?;
        let probe = tokio::time::timeout(std::time::Duration::from_secs(2), remote.health());
        if let Ok(Ok(health)) = probe.await {
            if health.version != env!("CARGO_PKG_VERSION") && !global.quiet {
                eprintln!(
                    "warning: the daemon runs sluice {}, this is {}; restart it with `sluice daemon stop && sluice daemon start`",
                    health.version,
                    env!("CARGO_PKG_VERSION")
                );
            }
            return Ok(Box::new(remote));
        }
    }
    Ok(Box::new(crate::api::Local::new(settings)))
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
        let path = completions.join(name);
        std::fs::write(&path, commands::completions::script(shell)?)?;
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
    if name == "sluice" {
        buf.extend_from_slice(EXIT_STATUS_ROFF.as_bytes());
    }
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf)?;
    written.push(path);
    // `help` repeats every page.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
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
