//! `sluice apply` and `sluice export`: the whole setup as one YAML file
//! (JSON with `-o json`, which `apply` reads as well).

use super::args::{OutputFormat, RuntimeArgs};
use super::output::{self, CliOutput};
use super::ui;
use super::{Ctx, ExitClass};
use crate::api::{ApiError, ApplyRequest, ChangeAction, PlannedChange, Setup};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Create or update sources, destinations and connections from a YAML file.
#[derive(Debug, Args)]
#[command(after_help = "\
${VAR} in the file is read from the environment when it is applied; `$${VAR}`
is a literal ${VAR}. Secrets left as ********** keep their stored value.

Example sluice.yaml:
  sources:
    faker:
      connector: python:airbyte-source-faker==7.2.1
      config: {count: 1000}
  destinations:
    local:
      connector: jsonl
      config: {path: ./out}
  connections:
    faker-to-local:
      source: faker
      destination: local
      streams: [users, purchases]
      sync_mode: incremental
      schedule: every:1h

  sluice apply -f sluice.yaml --dry-run
  sluice apply -f sluice.yaml --prune")]
pub struct ApplyArgs {
    /// The setup file (`-` for stdin).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete what the file no longer names.
    #[arg(long)]
    pub prune: bool,
    /// Run connectors' checks on what is created or updated.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Write the current setup as YAML (secrets masked), in `apply`'s format;
/// as JSON with `-o json`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice export > sluice.yaml
  sluice -o json export > sluice.json")]
pub struct ExportArgs {
    /// Write here instead of stdout.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl CliOutput for PlannedChange {
    fn headers() -> Vec<&'static str> {
        vec!["Action", "Kind", "Name"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.action.as_str().into(),
            self.kind.as_str().into(),
            self.name.clone(),
        ]
    }
}

pub async fn apply(ctx: &Ctx, a: ApplyArgs) -> anyhow::Result<ExitClass> {
    let name = a.file.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| ApiError::user(format!("cannot read the setup from stdin: {e}")))?
    } else {
        std::fs::read_to_string(&a.file)
            .map_err(|e| ApiError::user(format!("cannot read {name}: {e}")))?
    };
    // ${VAR} is read here, from the environment of whoever applies it.
    let mut setup = Setup::parse(&text, &name, |k| std::env::var(k).ok())?;
    // Paths are made absolute here, where the file's relative paths mean
    // something.
    for def in setup
        .sources
        .values_mut()
        .chain(setup.destinations.values_mut())
    {
        let config = std::mem::take(&mut def.config);
        def.config = super::source::stored_config(ctx, &def.connector, Some(config), &a.runtime)
            .await?
            .unwrap_or_default();
    }
    let request = ApplyRequest {
        setup,
        prune: a.prune,
        dry_run: a.dry_run,
        check: a.check,
        options: ctx.options(Some(&a.runtime))?,
    };
    // Everything is checked before anything changes, so one call both
    // plans and (unless a dry run) applies.
    let plan = ui::wait(ctx, ctx.api.apply(request).await).await?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if ctx.json() {
        output::print_json(&plan)?;
        return Ok(ExitClass::Success);
    }
    output::print_list(&plan.changes, OutputFormat::Table)?;
    if !a.dry_run && !ctx.global.quiet {
        let changed = plan
            .changes
            .iter()
            .filter(|c| c.action != ChangeAction::Unchanged)
            .count();
        eprintln!("Applied {name}: {changed} change(s).");
    }
    Ok(ExitClass::Success)
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<ExitClass> {
    let setup = ctx.api.export().await?;
    let text = if ctx.json() {
        let mut json = serde_json::to_string_pretty(&setup)?;
        json.push('\n');
        json
    } else {
        setup.to_yaml()?
    };
    match &a.file {
        Some(path) => crate::fsutil::write_atomic(path, text.as_bytes(), 0o600)
            .map_err(|e| ApiError::user(format!("cannot write {}: {e}", path.display())))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitClass::Success)
}
