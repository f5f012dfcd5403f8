//! `sluice state ...`: a connection's committed state, as the source sent it.

use super::args::OutputFormat;
use super::output;
use super::ui::done;
use super::{Ctx, ExitClass};
use crate::api::ApiError;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// See or change a connection's state (Airbyte's --state format).
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice state get faker-to-local > state.json
  sluice state set faker-to-local --file state.json
  sluice state reset faker-to-local --stream users")]
pub enum StateCommand {
    Get(GetArgs),
    Set(SetArgs),
    Reset(ResetArgs),
}

/// Print the state: a JSON array of state messages, or a legacy object.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub connection: String,
}

/// Replace the state with a file's (checked first).
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub connection: String,
    /// A state file in Airbyte's --state format.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
}

/// Clear the state of some streams, or all of it (the data stays).
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub connection: String,
    /// Only this stream (repeat for more).
    #[arg(long = "stream", value_name = "STREAM")]
    pub streams: Vec<String>,
}

pub async fn run(ctx: &Ctx, cmd: StateCommand) -> anyhow::Result<ExitClass> {
    match cmd {
        StateCommand::Get(a) => {
            let state = ctx.api.state_get(&a.connection).await?;
            match (ctx.global.output, state) {
                (OutputFormat::Json, s) => output::print_json(&s)?,
                (_, Some(s)) => output::print_json(&s.state)?,
                (_, None) => {
                    if !ctx.global.quiet {
                        eprintln!("Connection `{}` has no state yet.", a.connection);
                    }
                }
            }
        }
        StateCommand::Set(a) => {
            let bytes = std::fs::read(&a.file).map_err(|e| {
                ApiError::user(format!(
                    "cannot read the state file {}: {e}",
                    a.file.display()
                ))
            })?;
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::user(format!(
                    "the state file {} is not valid JSON: {e}",
                    a.file.display()
                ))
            })?;
            ctx.api.state_set(&a.connection, value).await?;
            done(
                ctx,
                &format!("Saved the state of connection `{}`.", a.connection),
            )?;
        }
        StateCommand::Reset(a) => {
            ctx.api.state_reset(&a.connection, &a.streams).await?;
            let what = if a.streams.is_empty() {
                "all streams".to_string()
            } else {
                a.streams.join(", ")
            };
            done(
                ctx,
                &format!(
                    "Cleared the state of connection `{}` ({what}).",
                    a.connection
                ),
            )?;
        }
    }
    Ok(ExitClass::Success)
}
