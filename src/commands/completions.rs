//! `sluice completions SHELL`: prints a shell completion script.

use super::ExitClass;
use clap::Args;
use std::io::Write;

/// Print a completion script for your shell.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice completions bash > ~/.local/share/bash-completion/completions/sluice
  sluice completions zsh > \"${fpath[1]}/_sluice\"
  sluice completions fish > ~/.config/fish/completions/sluice.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the script for `command` (the whole command line's definition).
/// It is made in memory first: writing to a closed pipe
/// (`sluice completions bash | head -1`) is an error, not a panic.
pub fn run(args: &CompletionsArgs, mut command: clap::Command) -> anyhow::Result<ExitClass> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sluice", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitClass::Success)
}
