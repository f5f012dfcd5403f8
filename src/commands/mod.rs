//! One file per top-level command: its arguments and its `run()`. A command
//! reads what lives on the user's machine (config, catalog and state
//! files), calls the `Api`, and renders the answer and the events of long
//! work; no SQL and no process spawning happen here, and nothing below
//! `crate::api` is imported. Only this module knows clap, indicatif and
//! comfy-table.

pub mod apply;
pub mod args;
pub mod complete;
pub mod completions;
pub mod connection;
pub mod connector;
pub mod daemon;
pub mod db;
pub mod files;
pub mod job;
pub mod output;
pub mod progress;
pub mod source;
pub mod state;
pub mod sync;
pub mod system;
pub mod ui;
pub mod webui;

use crate::api::{Api, ApiError, ErrorClass};
use args::{GlobalArgs, OutputFormat, RuntimeArgs};

/// The process exit code of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    Success = 0,
    /// The job or operation failed.
    Failed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// The daemon could not be reached.
    Unreachable = 3,
}

impl From<ErrorClass> for ExitClass {
    fn from(c: ErrorClass) -> ExitClass {
        match c {
            ErrorClass::User => ExitClass::Usage,
            ErrorClass::Failed | ErrorClass::Internal => ExitClass::Failed,
            ErrorClass::Unreachable => ExitClass::Unreachable,
        }
    }
}

/// How a sync or job that ran to its end exits: 0 when it succeeded; 2
/// when it stopped on a config error before it moved any record (the
/// user's input or setup to fix, as an error found before it started);
/// else 1.
pub fn outcome_class(
    status: crate::api::SyncStatus,
    failure: Option<&crate::api::Failure>,
    records: u64,
) -> ExitClass {
    use crate::api::{FailureType, SyncStatus};
    match (status, failure) {
        (SyncStatus::Succeeded, _) => ExitClass::Success,
        (SyncStatus::Failed, Some(f))
            if f.failure_type == FailureType::ConfigError && records == 0 =>
        {
            ExitClass::Usage
        }
        _ => ExitClass::Failed,
    }
}

/// What every command gets.
pub struct Ctx {
    pub api: Box<dyn Api>,
    pub global: GlobalArgs,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.global.output == OutputFormat::Json
    }

    /// The run options of a command that runs connectors.
    pub fn options(&self, runtime: Option<&RuntimeArgs>) -> anyhow::Result<crate::api::RunOptions> {
        self.global.run_options(runtime)
    }
}

/// How an error that ended a command is shown, and the exit code it gives.
/// A broken pipe on our own output (`sluice ... | head`) ends quietly.
pub fn report_error(err: &anyhow::Error, format: OutputFormat) -> ExitClass {
    let broken_pipe = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    });
    if broken_pipe {
        return ExitClass::Success;
    }
    let error = match err.downcast_ref::<ApiError>() {
        Some(e) => e.clone(),
        None => ApiError::failed(
            err.chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": "),
        ),
    };
    if format == OutputFormat::Json {
        let _ = output::print_json_line(&serde_json::json!({ "error": error }));
    }
    eprintln!("{}", error.render());
    error.class.into()
}
