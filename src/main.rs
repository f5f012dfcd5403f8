//! The `sluice` binary: parse the command line, run it, map the outcome to
//! an exit code. Everything else is library code.

use clap::{CommandFactory, Parser};
use sluice::cli::Cli;
use sluice::commands::{self, ExitClass};
use std::process::ExitCode;

/// Whether the command line asks for `--output json`, read before it is
/// parsed (for errors in parsing it).
fn wants_json() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|w| matches!(w[0].as_str(), "-o" | "--output") && w[1] == "json")
        || args.iter().any(|a| a == "--output=json" || a == "-ojson")
}

fn main() -> ExitCode {
    // A shell asking for completions (COMPLETE=bash sluice -- ...): answer
    // and exit, before anything else runs.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    if std::env::var_os("MALLOPT").is_some() {
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        }
    }
    // Diagnostics of sluice itself, with a span per job and attempt; off
    // unless SLUICE_LOG says (`SLUICE_LOG=info`, `SLUICE_LOG=sluice=debug`).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG") {
        use std::io::IsTerminal;
        let colour = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(colour)
            .init();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A script that asked for JSON gets its error as JSON too.
            if e.use_stderr() && wants_json() {
                let text = e.render().to_string();
                let first = text.split("\n\n").next().unwrap_or_default();
                let message = first
                    .trim_start_matches("error: ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let error = sluice::api::ApiError::user(message);
                let _ = sluice::commands::output::print_json_line(
                    &serde_json::json!({ "error": error }),
                );
            }
            e.exit()
        }
    };
    let format = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitClass::Failed as u8);
        }
    };
    let result = runtime.block_on(cli.run());
    // Do not wait for detached work (a signal watcher, a stuck reader).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(class) => ExitCode::from(class as u8),
        Err(e) => ExitCode::from(commands::report_error(&e, format) as u8),
    }
}
