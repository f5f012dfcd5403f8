//! `sluice sync`: one sync, inline, from a source to a destination.

use super::output::{self, CliOutput};
use super::progress::{self, StepSpinner, SyncProgress};
use super::Ctx;
use crate::cli::{DockerArgs, OutputFormat};
use crate::error::{ExitClass, UserError};
use crate::protocol::codec::DEFAULT_MAX_LINE_BYTES;
use crate::protocol::{DestinationSyncMode, LogLevel, SyncMode};
use crate::service::catalog::StreamSelection;
use crate::service::sync::{SyncOutcome, SyncRequest};
use crate::service::{ConfigInput, EchoFn, Ui};
use crate::sync::{StreamProgress, SyncStatus};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    #[arg(long, value_name = "REF")]
    pub source: String,

    /// The source config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub source_config: Option<String>,

    /// The destination connector.
    #[arg(long, value_name = "REF")]
    pub destination: String,

    /// The destination config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub destination_config: Option<String>,

    /// Only these streams (comma-separated names, or namespace.name).
    #[arg(long, value_delimiter = ',', value_name = "STREAMS")]
    pub streams: Vec<String>,

    /// How to read the streams.
    #[arg(long, value_enum, value_name = "MODE")]
    pub sync_mode: Option<SyncModeArg>,

    /// How to write them [default: overwrite for full_refresh, append for incremental].
    #[arg(long, value_enum, value_name = "MODE")]
    pub destination_sync_mode: Option<DestinationSyncModeArg>,

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
    pub docker: DockerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncModeArg {
    FullRefresh,
    Incremental,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DestinationSyncModeArg {
    Overwrite,
    Append,
    AppendDedup,
}

impl SyncArgs {
    pub fn request(&self) -> Result<SyncRequest, UserError> {
        Ok(SyncRequest {
            source: self.source.clone(),
            source_config: ConfigInput::parse(self.source_config.as_deref())?,
            destination: self.destination.clone(),
            destination_config: ConfigInput::parse(self.destination_config.as_deref())?,
            selection: StreamSelection {
                streams: self
                    .streams
                    .iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                sync_mode: self.sync_mode.map(|m| match m {
                    SyncModeArg::FullRefresh => SyncMode::FullRefresh,
                    SyncModeArg::Incremental => SyncMode::Incremental,
                }),
                destination_sync_mode: self.destination_sync_mode.map(|m| match m {
                    DestinationSyncModeArg::Overwrite => DestinationSyncMode::Overwrite,
                    DestinationSyncModeArg::Append => DestinationSyncMode::Append,
                    DestinationSyncModeArg::AppendDedup => DestinationSyncMode::AppendDedup,
                }),
            },
            state_file: self.state.clone(),
            catalog_file: self.catalog.clone(),
            namespace: self.namespace.parse().map_err(UserError::new)?,
            prefix: self.prefix.clone(),
            max_line_bytes: self.max_line_size,
            log_file: self.log_file.clone(),
        })
    }
}

pub async fn run(ctx: &Ctx, args: SyncArgs) -> anyhow::Result<ExitClass> {
    let req = args.request()?;
    let draw = progress::enabled(ctx.global.quiet);
    let bars = Arc::new(SyncProgress::new(draw));
    let spinner = Arc::new(StepSpinner::new(ctx.global.quiet));
    let cancel = CancellationToken::new();
    let ui = Ui {
        observer: bars.clone(),
        progress: spinner.clone(),
        echo: echo(ctx.global.verbose, bars.clone()),
        cancel: cancel.clone(),
    };
    let result = tokio::select! {
        r = ctx.api.sync(req, ui) => r,
        _ = watch_signals(cancel, bars.clone(), ctx.global.quiet) => {
            // Asked twice: stop at once. Processes die with sluice;
            // containers do not, so they are removed first.
            spinner.finish();
            bars.finish();
            ctx.api.stop_connectors().await;
            std::process::exit(130);
        }
    };
    spinner.finish();
    bars.finish();
    let outcome = result?;
    render(ctx, &outcome)?;
    Ok(match outcome.report.status {
        SyncStatus::Succeeded => ExitClass::Success,
        SyncStatus::Failed | SyncStatus::Cancelled => ExitClass::Failed,
    })
}

/// Connector logs shown live with -v (info and up) or -vv (everything).
pub fn echo(verbose: u8, bars: Arc<SyncProgress>) -> Option<EchoFn> {
    if verbose == 0 {
        return None;
    }
    let floor = if verbose >= 2 {
        LogLevel::Trace
    } else {
        LogLevel::Info
    };
    Some(Arc::new(
        move |origin: &str, level: LogLevel, message: &str| {
            if level <= floor {
                bars.println(&format!("{origin} {}: {message}", level.as_str()));
            }
        },
    ))
}

/// First Ctrl-C (or SIGTERM): stop gracefully. Second: returns, for the
/// caller to stop at once. Never returns when signals cannot be watched.
pub(crate) async fn watch_signals(cancel: CancellationToken, bars: Arc<SyncProgress>, quiet: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    if !quiet {
        bars.println("Stopping the sync; the destination may confirm what it has (Ctrl-C again to stop at once).");
    }
    cancel.cancel();
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
}

impl CliOutput for StreamProgress {
    fn headers() -> Vec<&'static str> {
        vec!["Stream", "Records", "Bytes", "Committed", "Checkpoints"]
    }

    fn row(&self) -> Vec<String> {
        let name = match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        };
        vec![
            name,
            output::thousands(self.records),
            output::bytes(self.bytes),
            output::thousands(self.records_committed),
            output::thousands(self.checkpoints),
        ]
    }
}

fn render(ctx: &Ctx, o: &SyncOutcome) -> anyhow::Result<()> {
    let r = &o.report;
    if ctx.global.output == OutputFormat::Json {
        return output::print_json(o);
    }
    output::print_list(&r.streams, OutputFormat::Table)?;
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
                if let (Some(path), true) = (&o.state_file, r.state_committed) {
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
                match f {
                    Some(f) => format!(
                        "the sync failed ({} error from the {}): {}",
                        f.failure_type, f.origin, f.message
                    ),
                    None => {
                        "the sync failed (unknown error from the platform): no reason was given"
                            .to_string()
                    }
                }
            };
            eprintln!("error: {what}");
            let mut hints = Vec::new();
            if r.state_committed {
                if let Some(p) = &o.state_file {
                    hints.push(format!(
                        "{} records were committed and {} holds the state to resume from",
                        output::thousands(r.records_committed),
                        p.display()
                    ));
                }
            }
            if let Some(log) = &o.log_file {
                hints.push(format!("the full log is {}", log.display()));
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
