//! `sluice sync`: one sync, inline, from a source to a destination.

use super::args::{
    stream_names, words, RuntimeArgs, StreamChoices, DESTINATION_SYNC_MODES,
    DESTINATION_SYNC_MODE_HELP, SYNC_MODES,
};
use super::files::{self, ConfigArg};
use super::output::{self, CliOutput};
use super::ui::{self, Show};
use super::{Ctx, ExitClass};
use crate::api::{
    ApiError, ConfigKeepers, DestinationSyncMode, Event, NamespaceRule, Role, StreamProgress,
    SyncAnswer, SyncMode, SyncRequest, SyncStatus,
};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

/// The longest protocol line accepted unless --max-line-size says.
const DEFAULT_MAX_LINE_BYTES: usize = 100 * 1024 * 1024;

/// Run one sync now: read a source, write a destination, keep the state.
#[derive(Debug, Args)]
#[command(after_help = "\
Connector references:
  sample, file, jsonl, csv, devnull,    built-in connectors (also builtin:NAME)
  postgres
  python:PACKAGE[==VERSION]             an Airbyte connector from PyPI, installed on first use
  docker:IMAGE:TAG                      an Airbyte connector image, one container per command
  exec:/path/to/program                 a local program that speaks the Airbyte Protocol

Examples:
  sluice sync --source sample --source-config '{\"count\": 1000}' \\
      --destination jsonl --destination-config '{\"path\": \"./out\"}'

  sluice sync --source python:airbyte-source-faker==7.2.1 --source-config faker.json \\
      --destination csv --destination-config '{\"path\": \"./out\"}' \\
      --streams users,purchases --sync-mode incremental --state faker-state.json

  sluice sync --source docker:airbyte/source-postgres:3.6.28 --source-config pg.json \\
      --destination docker:airbyte/destination-local-json:0.2.11 \\
      --destination-config '{\"destination_path\": \"/local/pg\"}' --local-root ./out \\
      --network dbnet --memory 1g --cpus 1

  # In a script: JSON on stdout, exit status 0 (succeeded), 1 (failed), 2 (bad usage)
  sluice sync --source sample --destination devnull --output json | jq .records")]
pub struct SyncArgs {
    /// The source connector.
    #[arg(long, value_name = "REF", add = super::complete::connector_refs())]
    pub source: String,

    /// The source config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub source_config: Option<String>,

    /// The destination connector.
    #[arg(long, value_name = "REF", add = super::complete::connector_refs())]
    pub destination: String,

    /// The destination config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub destination_config: Option<String>,

    /// Only these streams (comma-separated names, or namespace.name).
    #[arg(long, value_delimiter = ',', value_name = "STREAMS")]
    pub streams: Vec<String>,

    /// How to read the streams: full_refresh (everything, every time) or
    /// incremental (what is new since the state) [default: full_refresh].
    #[arg(long, value_name = "MODE", value_parser = words::<SyncMode>(&SYNC_MODES))]
    pub sync_mode: Option<SyncMode>,

    #[arg(long, value_name = "MODE", value_parser = words::<DestinationSyncMode>(&DESTINATION_SYNC_MODES), help = DESTINATION_SYNC_MODE_HELP)]
    pub destination_sync_mode: Option<DestinationSyncMode>,

    #[command(flatten)]
    pub choices: StreamChoices,

    /// A state file: read at start if it exists, rewritten after every
    /// committed checkpoint (Airbyte's --state format).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// A configured catalog to use instead of discovering the source.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Where streams land: source, destination, or custom:NAME
    /// (${SOURCE_NAMESPACE} in NAME is replaced).
    #[arg(long, default_value = "source", value_name = "RULE")]
    pub namespace: String,

    /// A prefix for every stream name in the destination.
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub prefix: String,

    /// The longest protocol line accepted, in bytes; longer fails the sync.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_BYTES, value_name = "BYTES")]
    pub max_line_size: usize,

    /// Write the sync's log here instead of the data directory.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// What the command reads from the user's files, and where it writes back.
struct Inputs {
    request: SyncRequest,
    source_config: ConfigArg,
    destination_config: ConfigArg,
}

impl SyncArgs {
    fn inputs(&self, ctx: &Ctx) -> anyhow::Result<Inputs> {
        let source_config = ConfigArg::read(self.source_config.as_deref(), "source config")?;
        let destination_config =
            ConfigArg::read(self.destination_config.as_deref(), "destination config")?;
        let choices = self.choices.maps()?;
        let request = SyncRequest {
            source: self.source.clone(),
            source_config: source_config.value.clone(),
            destination: self.destination.clone(),
            destination_config: destination_config.value.clone(),
            streams: stream_names(&self.streams)?,
            sync_mode: self.sync_mode,
            destination_sync_mode: self.destination_sync_mode,
            cursors: choices.cursors,
            primary_keys: choices.primary_keys,
            sync_modes: choices.sync_modes,
            destination_sync_modes: choices.destination_sync_modes,
            selected_fields: choices.selected_fields,
            catalog: self
                .catalog
                .as_deref()
                .map(files::read_catalog)
                .transpose()?,
            state: self
                .state
                .as_deref()
                .map(files::read_state)
                .transpose()?
                .flatten(),
            keeps_state: self.state.is_some(),
            keeps_configs: ConfigKeepers {
                source: source_config.file.is_some(),
                destination: destination_config.file.is_some(),
            },
            namespace: self
                .namespace
                .parse::<NamespaceRule>()
                .map_err(ApiError::user)?,
            prefix: self.prefix.clone(),
            max_line_bytes: self.max_line_size as u64,
            keep_log: self.log_file.is_none(),
            options: ctx.options(Some(&self.runtime))?,
        };
        Ok(Inputs {
            request,
            source_config,
            destination_config,
        })
    }
}

/// What `sluice sync --output json` prints.
#[derive(Serialize)]
struct Outcome<'a> {
    #[serde(flatten)]
    answer: &'a SyncAnswer,
    state_file: Option<&'a PathBuf>,
}

pub async fn run(ctx: &Ctx, args: SyncArgs) -> anyhow::Result<ExitClass> {
    let Inputs {
        mut request,
        source_config,
        destination_config,
    } = args.inputs(ctx)?;
    if let Some(path) = &args.state {
        files::writable(path, "state file")?;
    }
    if args.state.is_some()
        && request.catalog.is_none()
        && request.sync_mode != Some(SyncMode::Incremental)
        && !request
            .sync_modes
            .values()
            .any(|m| *m == SyncMode::Incremental)
        && !ctx.global.quiet
    {
        eprintln!(
            "note: a full refresh reads every stream from the start and does not read --state; \
             the file is written only if the source commits states (--sync-mode incremental \
             resumes from it)."
        );
    }
    // A log file of the user's own is written here, from every log line.
    let log_file = match &args.log_file {
        Some(path) => {
            request.options.logs = Some(crate::api::LogLevel::Trace);
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        ApiError::user(format!(
                            "cannot create the log file {}: {e}",
                            path.display()
                        ))
                    })?,
            )
        }
        None => None,
    };
    let mut log_file = log_file.map(std::io::LineWriter::new);
    let run = ctx.api.sync(request).await;
    let mut answer = ui::follow(ctx, run, Show::Sync, |event| {
        match event {
            Event::StateCommitted { state } => {
                if let Some(path) = &args.state {
                    files::write_state(path, state)?;
                }
            }
            Event::ConfigUpdated { role, config } => {
                let arg = match role {
                    Role::Source => &source_config,
                    Role::Destination => &destination_config,
                };
                if let Err(why) = arg.keep(config) {
                    eprintln!("warning: the {role}'s updated config was not saved: {why}");
                }
            }
            Event::Log {
                at,
                origin,
                level,
                message,
            } => {
                if let Some(f) = &mut log_file {
                    use std::io::Write;
                    let _ = f.write_all(Event::log_line(at, origin, *level, message).as_bytes());
                }
            }
            _ => {}
        }
        Ok(())
    })
    .await?;
    if let Some(path) = &args.log_file {
        answer.log_file = Some(path.display().to_string());
    }
    render(ctx, &answer, args.state.as_ref())?;
    Ok(super::outcome_class(
        answer.status,
        answer.failure.as_ref(),
        answer.records,
    ))
}

impl CliOutput for StreamProgress {
    fn headers() -> Vec<&'static str> {
        vec!["Stream", "Records", "Bytes", "Committed", "Checkpoints"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.descriptor(),
            output::thousands(self.records),
            output::bytes(self.bytes),
            output::thousands(self.records_committed),
            output::thousands(self.checkpoints),
        ]
    }
}

/// A sync's streams for people. Once a sync has succeeded, everything it
/// read is committed, checkpoints or not: a full refresh commits at its
/// end, and the table says so.
fn streams_table(r: &SyncAnswer) -> anyhow::Result<()> {
    let mut t = output::table(StreamProgress::headers());
    for s in &r.streams {
        let mut row = s.row();
        if r.status == SyncStatus::Succeeded && s.checkpoints == 0 {
            row[4] = "0 (at the end)".into();
        }
        t.add_row(row);
    }
    output::print_table(&t)
}

fn render(ctx: &Ctx, r: &SyncAnswer, state_file: Option<&PathBuf>) -> anyhow::Result<()> {
    if ctx.json() {
        return output::print_json(&Outcome {
            answer: r,
            state_file,
        });
    }
    streams_table(r)?;
    let took = output::duration_ms(r.duration_ms);
    let rate = output::thousands(
        (r.records * 1000)
            .checked_div(r.duration_ms)
            .unwrap_or(r.records),
    );
    match r.status {
        SyncStatus::Succeeded => {
            if !ctx.global.quiet {
                let mut line = format!(
                    "Sync succeeded in {took}: {} records ({}), {rate} records/s.",
                    output::thousands(r.records),
                    output::bytes(r.bytes),
                );
                if let (Some(path), true) = (state_file, r.state_committed) {
                    line.push_str(&format!(" State saved to {}.", path.display()));
                }
                eprintln!("{line}");
            }
        }
        SyncStatus::Failed | SyncStatus::Cancelled => {
            let f = r.failure.as_ref();
            let what = if r.status == SyncStatus::Cancelled {
                "the sync was cancelled".to_string()
            } else {
                format!("the sync failed, with {}", output::failure(f))
            };
            eprintln!("error: {what}");
            let mut hints = Vec::new();
            if r.state_committed {
                if let Some(p) = state_file {
                    hints.push(format!(
                        "{} records were committed and {} holds the state to resume from",
                        output::thousands(r.records_committed),
                        p.display()
                    ));
                }
            }
            if let Some(log) = &r.log_file {
                hints.push(format!("the full log is {log}"));
            }
            if !hints.is_empty() {
                eprintln!("\nhint: {}", hints.join("; "));
            }
        }
    }
    if r.lines_skipped > 0 && !ctx.global.quiet {
        eprintln!(
            "warning: {} line(s) were not protocol messages and were skipped (see the log).",
            output::thousands(r.lines_skipped)
        );
    }
    Ok(())
}
