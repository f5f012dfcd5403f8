//! What commands share in showing work: following a run's events (steps on
//! a spinner, progress bars, log lines with -v, notices), Ctrl-C, and the
//! short confirmations of finished work.

use super::output;
use super::progress::{self, StepSpinner, SyncProgress};
use super::Ctx;
use crate::api::{Event, Run};
use std::time::Duration;

/// How a run is shown, and what Ctrl-C does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// A spinner for steps; Ctrl-C stops the run at once.
    Steps,
    /// Steps, and a progress line per stream; the first Ctrl-C (or
    /// SIGTERM) stops the sync gracefully, the second at once.
    Sync,
    /// Steps; the first Ctrl-C asks the run to stop (it stops its
    /// connector itself), the second stops it at once.
    Graceful,
}

/// Follows a run to its answer, showing its events; `on` gets each event
/// too (to keep a committed state, say). An error from `on` stops the run
/// and is the command's error.
pub async fn follow<T>(
    ctx: &Ctx,
    mut run: Run<T>,
    show: Show,
    mut on: impl FnMut(&Event) -> anyhow::Result<()>,
) -> anyhow::Result<T> {
    let quiet = ctx.global.quiet;
    let spinner = StepSpinner::new(quiet);
    let bars = SyncProgress::new(show == Show::Sync && progress::enabled(quiet));
    let echo = ctx.global.run_options(None)?.logs;
    let mut signals = Signals::new();
    let mut asked = 0;
    let mut job: Option<i64> = None;
    let mut failed: Option<anyhow::Error> = None;
    let stop_now = |spinner: &StepSpinner, bars: &SyncProgress| {
        spinner.finish();
        bars.finish();
    };
    loop {
        tokio::select! {
            event = run.next_event() => {
                let Some(event) = event else { break };
                match &event {
                    Event::Step { message } => spinner.step(message),
                    Event::Progress { streams, elapsed_ms } => {
                        bars.progress(streams, Duration::from_millis(*elapsed_ms))
                    }
                    Event::Notice { message, .. } => bars.println(message),
                    Event::JobStarted { job: id } => job = Some(*id),
                    Event::Log { origin, level, message, .. } if echo.is_some_and(|floor| *level <= floor) => {
                        bars.println(&format!("{origin} {}: {message}", level.as_str()))
                    }
                    _ => {}
                }
                if failed.is_none() {
                    if let Err(e) = on(&event) {
                        failed = Some(e);
                        let _ = ctx.api.cancel(run.id(), false).await;
                    }
                }
            }
            _ = signals.recv() => {
                if let (Some(id), true) = (job, ctx.api.jobs_run_apart()) {
                    // A daemon's job goes on without us.
                    stop_now(&spinner, &bars);
                    eprintln!("Stopped following job {id}; it goes on in the daemon. `sluice job cancel {id}` cancels it, `sluice job logs {id} -f` follows its log.");
                    std::process::exit(130);
                }
                asked += 1;
                if asked == 1 && show != Show::Steps {
                    if show == Show::Sync && !quiet {
                        bars.println("Stopping the sync; the destination may confirm what it has (Ctrl-C again to stop at once).");
                    }
                    let _ = ctx.api.cancel(run.id(), false).await;
                } else {
                    // Processes die with sluice; containers do not, so
                    // they are removed first.
                    stop_now(&spinner, &bars);
                    let _ = ctx.api.cancel(run.id(), true).await;
                    std::process::exit(130);
                }
            }
        }
    }
    stop_now(&spinner, &bars);
    let answer = run.answer().await;
    match failed {
        Some(e) => Err(e),
        None => Ok(answer?),
    }
}

/// Follows a run that says nothing a command keeps.
pub async fn wait<T>(ctx: &Ctx, run: Run<T>) -> anyhow::Result<T> {
    follow(ctx, run, Show::Steps, |_| Ok(())).await
}

/// SIGINT and SIGTERM, as they come; never fires when they cannot be
/// watched.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) {
        match (&mut self.int, &mut self.term) {
            (Some(int), Some(term)) => {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            }
            _ => std::future::pending().await,
        }
    }
}

/// One record: JSON on stdout, or a line on stderr for people.
pub fn show_one<T: serde::Serialize>(ctx: &Ctx, value: &T, message: &str) -> anyhow::Result<()> {
    if ctx.json() {
        output::print_json(value)
    } else {
        done(ctx, message)
    }
}

/// A confirmation: `{"message": ...}` on stdout with `--output json`, else a
/// line on stderr (none with `--quiet`).
pub fn done(ctx: &Ctx, message: &str) -> anyhow::Result<()> {
    if ctx.json() {
        output::print_json(&serde_json::json!({ "message": message }))
    } else {
        if !ctx.global.quiet {
            eprintln!("{message}");
        }
        Ok(())
    }
}
