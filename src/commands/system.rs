//! `sluice system ...`: housekeeping of the machine sluice runs on.

use super::args::OutputFormat;
use super::output::{self, CliOutput};
use super::{Ctx, ExitClass};
use crate::api::Swept;
use clap::{Args, Subcommand};

/// Housekeeping: remove what crashed runs left behind.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    Sweep(SweepArgs),
}

/// Remove connector containers left behind: those that exited, and those
/// whose sluice process is gone (killed, crashed, or the machine rebooted).
#[derive(Debug, Args)]
#[command(after_help = "\
Containers of a sluice that still runs are kept. Each container sluice starts
carries the labels sluice.job, sluice.attempt, sluice.role and sluice.pid:
  docker ps --all --filter label=sluice.pid

Examples:
  sluice system sweep
  sluice system sweep --output json | jq '.removed | length'")]
pub struct SweepArgs {}

pub async fn run(ctx: &Ctx, cmd: SystemCommand) -> anyhow::Result<ExitClass> {
    match cmd {
        SystemCommand::Sweep(_) => {
            let report = ctx.api.system_sweep().await?;
            if ctx.json() {
                output::print_json(&report)?;
                return Ok(ExitClass::Success);
            }
            if !report.removed.is_empty() {
                output::print_list(&report.removed, OutputFormat::Table)?;
            }
            if !ctx.global.quiet {
                eprintln!(
                    "Removed {} container(s); kept {}.",
                    report.removed.len(),
                    report.kept.len()
                );
                for kept in &report.kept {
                    eprintln!("  kept {} ({}): {}.", kept.name, kept.id, kept.reason);
                }
            }
            Ok(ExitClass::Success)
        }
    }
}

impl CliOutput for Swept {
    fn headers() -> Vec<&'static str> {
        vec!["Container", "Image", "Job", "Role", "State", "Why"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            format!("{} ({})", self.name, self.id),
            self.image.clone(),
            self.job.clone().unwrap_or_default(),
            self.role.clone().unwrap_or_default(),
            self.state.clone(),
            self.reason.clone(),
        ]
    }
}
