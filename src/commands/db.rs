//! `sluice db ...`: the job store itself.

use super::output;
use super::{Ctx, ExitClass};
use clap::{Args, Subcommand};

/// The job store: an SQLite file in the data dir, or PostgreSQL
/// (--database-url / SLUICE_DATABASE_URL).
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice db status
  SLUICE_DATABASE_URL=postgres://sluice:PASSWORD@db/sluice sluice db migrate")]
pub enum DbCommand {
    /// Apply the migrations this binary has and the store lacks (done on
    /// first use too).
    Migrate(NoArgs),
    /// Show the backend, its URL (password masked) and the applied migrations.
    Status(NoArgs),
}

#[derive(Debug, Args)]
pub struct NoArgs {}

pub async fn run(ctx: &Ctx, cmd: DbCommand) -> anyhow::Result<ExitClass> {
    // Opening the store migrates it; both commands show the result.
    let status = ctx.api.db_status().await?;
    if ctx.json() {
        output::print_json(&status)?;
        return Ok(ExitClass::Success);
    }
    let mut t = output::table(vec!["Backend", "URL", "Migrations"]);
    t.add_row(vec![
        status.backend.clone(),
        status.url.clone(),
        status.applied.len().to_string(),
    ]);
    output::print_table(&t)?;
    let mut t = output::table(vec!["Version", "Description", "Applied"]);
    for m in &status.applied {
        t.add_row(vec![
            m.version.to_string(),
            m.description.clone(),
            m.installed_on.clone(),
        ]);
    }
    output::print_table(&t)?;
    if matches!(cmd, DbCommand::Migrate(_)) && !ctx.global.quiet {
        eprintln!("The job store is up to date.");
    }
    Ok(ExitClass::Success)
}
