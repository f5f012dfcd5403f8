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

/// The script that registers sluice's completions with `shell`: it asks
/// `sluice` itself for candidates (COMPLETE=SHELL), so names from this
/// machine's store and connectors are completed as they are now.
pub fn script(shell: clap_complete::Shell) -> std::io::Result<Vec<u8>> {
    use clap_complete::env::EnvCompleter;
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &clap_complete::env::Bash,
        clap_complete::Shell::Zsh => &clap_complete::env::Zsh,
        clap_complete::Shell::Fish => &clap_complete::env::Fish,
        clap_complete::Shell::Elvish => &clap_complete::env::Elvish,
        clap_complete::Shell::PowerShell => &clap_complete::env::Powershell,
        _ => &clap_complete::env::Bash,
    };
    let mut script = Vec::new();
    completer.write_registration("COMPLETE", "sluice", "sluice", "sluice", &mut script)?;
    Ok(script)
}

/// Prints the registration script. It is made in memory first: writing to
/// a closed pipe (`sluice completions bash | head -1`) is an error, not a
/// panic.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitClass> {
    let script = script(args.shell)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitClass::Success)
}
