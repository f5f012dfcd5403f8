//! The command line: the top-level clap definitions, and the completions and
//! man pages generated from them. Each command's own arguments live beside
//! its `run()` in `commands/`.

use crate::commands;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

const ABOUT: &str = "Move data from sources to destinations over the Airbyte Protocol.";

const LONG_ABOUT: &str = "\
Move data from sources to destinations over the Airbyte Protocol, as one binary.

sluice runs Airbyte connectors (Python packages from PyPI, local programs) and its
own native connectors. `sluice sync` runs one sync inline: nothing else to start.";

const EXAMPLES: &str = "\
Examples:
  # Generated records into JSON Lines files, one per stream
  sluice sync --source sample --source-config '{\"count\": 1000}' \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}'

  # A real Airbyte connector from PyPI, incrementally, keeping state
  sluice sync --source python:airbyte-source-faker==7.2.1 --source-config faker.json \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}' \\
      --sync-mode incremental --state state.json

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Sync(commands::sync::SyncArgs),
    #[command(subcommand)]
    Connector(commands::connector::ConnectorCommand),
    Completions(commands::completions::CompletionsArgs),
    /// Writes completions/ and man/ from these definitions (for packagers).
    #[command(hide = true)]
    GenerateAssets(GenerateAssetsArgs),
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
