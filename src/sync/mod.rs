//! The sync engine: one attempt of one sync, source -> destination.
//!
//! Guarantees (DESIGN.md, "The sync engine"):
//! - Memory is bounded whatever the data size: output is read in chunks and
//!   written on before the next is read, so a slow destination slows the
//!   source.
//! - A state is committed (handed to the [`StateSink`]) only when the
//!   destination emits it back, in order; see [`tracker`].
//! - A TRACE ERROR fails the attempt with the connector's own message; a
//!   connector that exits non-zero or is killed fails it with its exit
//!   status and the tail of its stderr. Records and states read before a
//!   source failure still reach the destination, so what it confirms is
//!   committed.
//! - Cancelling stops the source at once and gives the destination a grace
//!   period to confirm what it already has; the last committed state stays.
//!
//! The engine knows nothing of files, terminals or stores: it reports
//! through [`SyncObserver`], [`StateSink`] and [`ConfigSink`].

pub mod log;
pub mod mapping;
mod pump;
mod splice;
pub mod tracker;

use crate::connector::{
    preview, Connector, ConnectorError, ExitStatus, LogSink, Role, RunContext, Running,
};
use crate::protocol::codec::{lines, CodecError, LineReader};
use crate::protocol::{
    ConfiguredAirbyteCatalog, ControlMessage, FailureType, LogLevel, Message, StateSnapshot,
    StreamDescriptor, TraceKind,
};
use mapping::Mapping;
use pump::{write_or_abort, Names, Pump, PumpEnd};
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracker::StateTracker;

/// Everything one attempt needs to run.
pub struct SyncPlan {
    pub source: Arc<dyn Connector>,
    pub source_config: Value,
    pub destination: Arc<dyn Connector>,
    pub destination_config: Value,
    /// The catalog as the source sees it.
    pub catalog: ConfiguredAirbyteCatalog,
    pub mapping: Mapping,
    /// The committed state to resume from.
    pub state: Option<StateSnapshot>,
    pub max_line_bytes: usize,
    /// Labels for what runtimes start (container labels).
    pub labels: Vec<(String, String)>,
    /// The run this attempt belongs to (see `RunContext::run`).
    pub run: String,
}

/// Receives each committed state, with the progress as it stands with
/// that state committed. A sink that fails fails the sync: the user asked
/// for the state to be kept.
pub trait StateSink: Send + Sync {
    fn commit(&self, snapshot: &StateSnapshot, progress: &Progress) -> Result<(), String>;
}

/// Keeps nothing; for syncs run without a state file.
pub struct NoStateSink;

impl StateSink for NoStateSink {
    fn commit(&self, _: &StateSnapshot, _: &Progress) -> Result<(), String> {
        Ok(())
    }
}

/// Receives a connector's CONTROL config update. Validates and stores it,
/// or says why not (which is logged, not fatal).
pub trait ConfigSink: Send + Sync {
    fn update(&self, role: Role, config: &Value) -> Result<(), String>;
}

/// How a sync is going, for progress displays.
pub trait SyncObserver: Send + Sync {
    fn progress(&self, _progress: &Progress) {}
    /// A notable event, worth a line on a terminal.
    fn event(&self, _level: LogLevel, _message: &str) {}
}

pub struct NoObserver;
impl SyncObserver for NoObserver {}

pub use crate::model::{Failure, FailureOrigin, StreamProgress, SyncStatus};

#[derive(Debug, Clone)]
pub struct Progress {
    pub streams: Vec<StreamProgress>,
    pub elapsed: Duration,
}

/// The origin of what a connector in `role` did.
fn origin_of(role: Role) -> FailureOrigin {
    match role {
        Role::Source => FailureOrigin::Source,
        Role::Destination => FailureOrigin::Destination,
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub status: SyncStatus,
    pub failure: Option<Failure>,
    pub streams: Vec<StreamProgress>,
    pub records: u64,
    pub bytes: u64,
    pub records_committed: u64,
    pub duration_ms: u64,
    /// Lines that were not protocol messages, skipped.
    pub lines_skipped: u64,
    /// Records for streams outside the catalog, dropped.
    pub records_dropped: u64,
    #[serde(skip)]
    pub committed_state: Option<StateSnapshot>,
    /// Whether any state was committed during this attempt.
    pub state_committed: bool,
}

/// State shared by the pump (source side) and the confirmer (destination side).
struct Shared {
    tracker: StateTracker,
    estimates: Vec<Option<u64>>,
    statuses: Vec<Option<&'static str>>,
    /// The first TRACE ERROR of each side.
    source_error: Option<Failure>,
    destination_error: Option<Failure>,
    /// A failure that stops everything at once.
    fatal: Option<Failure>,
    state_committed: bool,
    lines_skipped: u64,
    records_dropped: u64,
}

impl Shared {
    fn progress(&self, started: Instant) -> Progress {
        Progress {
            streams: self
                .tracker
                .streams
                .iter()
                .enumerate()
                .map(|(i, s)| StreamProgress {
                    namespace: s.stream.namespace.clone(),
                    name: s.stream.name.clone(),
                    records: s.records,
                    bytes: s.bytes,
                    records_committed: s.committed,
                    checkpoints: s.checkpoints,
                    estimate: self.estimates[i],
                    status: self.statuses[i].map(str::to_string),
                })
                .collect(),
            elapsed: started.elapsed(),
        }
    }

    fn set_fatal(&mut self, f: Failure) {
        self.fatal.get_or_insert(f);
    }
}

/// Hooks the engine reports through.
pub struct SyncHooks {
    pub log: Arc<dyn LogSink>,
    pub observer: Arc<dyn SyncObserver>,
    pub state_sink: Arc<dyn StateSink>,
    pub config_sink: Arc<dyn ConfigSink>,
    pub cancel: CancellationToken,
    /// How long a cancelled sync waits for the destination to confirm what
    /// it already has.
    pub grace: Duration,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Runs one attempt.
pub async fn run(plan: SyncPlan, hooks: SyncHooks) -> SyncReport {
    let started = Instant::now();
    let streams: Vec<StreamDescriptor> = plan
        .catalog
        .streams
        .iter()
        .map(|s| s.stream.descriptor())
        .collect();
    let n = streams.len();
    let reverse = plan.mapping.reverse(&plan.catalog);
    let shared = Arc::new(Mutex::new(Shared {
        tracker: StateTracker::new(
            streams.clone(),
            plan.state.clone(),
            plan.mapping.clone(),
            reverse.clone(),
        ),
        estimates: vec![None; n],
        statuses: vec![None; n],
        source_error: None,
        destination_error: None,
        fatal: None,
        state_committed: false,
        lines_skipped: 0,
        records_dropped: 0,
    }));
    let finish = |shared: &Arc<Mutex<Shared>>, status: SyncStatus, failure: Option<Failure>| {
        let s = shared.lock().expect("engine lock");
        let mut progress = s.progress(started);
        if status == SyncStatus::Succeeded {
            // A sync that succeeded has every record it read in the
            // destination, checkpoints or not (a full refresh commits at
            // its end): its counts say so, as the state-by-state counts
            // cannot.
            for s in &mut progress.streams {
                s.records_committed = s.records;
            }
        }
        hooks.observer.progress(&progress);
        let records = progress.streams.iter().map(|s| s.records).sum();
        let bytes = progress.streams.iter().map(|s| s.bytes).sum();
        let records_committed = progress.streams.iter().map(|s| s.records_committed).sum();
        SyncReport {
            status,
            failure,
            records,
            bytes,
            records_committed,
            streams: progress.streams,
            duration_ms: started.elapsed().as_millis() as u64,
            lines_skipped: s.lines_skipped,
            records_dropped: s.records_dropped,
            committed_state: s.tracker.committed().cloned(),
            state_committed: s.state_committed,
        }
    };

    let dest_catalog = match plan.mapping.destination_catalog(&plan.catalog) {
        Ok(c) => c,
        Err(message) => {
            let f = Failure::new(FailureOrigin::Platform, FailureType::ConfigError, message);
            return finish(&shared, SyncStatus::Failed, Some(f));
        }
    };
    let mut names = Names::new(&plan.catalog, &plan.mapping);
    // Rows go from a built-in source to a built-in destination without
    // JSON when both can and no stream is renamed on the way (selected
    // fields are the source's to leave out, and the columns both ends
    // agree on show that it did).
    let handoff = (plan.source.hands_off_rows()
        && plan.destination.hands_off_rows()
        && plan.mapping.keeps_names())
    .then(|| {
        Arc::new(crate::connector::builtin::handoff::Handoff::new(
            plan.max_line_bytes,
        ))
    });
    if handoff.is_some() {
        names = names.with_rows();
    }
    let context = |role: Role| {
        let mut cx = RunContext::new(&plan.run, role, hooks.log.clone());
        cx.max_line_bytes = plan.max_line_bytes;
        cx.labels = plan.labels.clone();
        cx.labels.push(("sluice.role".into(), role.as_str().into()));
        cx.handoff = handoff.clone();
        cx
    };
    let (scx, dcx) = (context(Role::Source), context(Role::Destination));
    let start_failure = |role: Role, e: ConnectorError| {
        let failure_type = if e.is_config_error() {
            FailureType::ConfigError
        } else {
            FailureType::SystemError
        };
        Failure::new(origin_of(role), failure_type, e.to_string())
    };

    tracing::debug!(streams = n, source = %plan.source.reference(), destination = %plan.destination.reference(), run = %plan.run, "Sync started.");
    hooks.log.log(
        "sluice",
        LogLevel::Info,
        &format!(
            "Starting the sync of {n} stream(s) from {} to {}.",
            plan.source.reference(),
            plan.destination.reference()
        ),
    );
    // Both start at once: starting a container takes a while, and a source
    // that writes before the destination is read from only waits.
    let state_arg = plan.state.as_ref().map(StateSnapshot::to_file_value);
    let (dest, src) = tokio::join!(
        plan.destination
            .write(&plan.destination_config, &dest_catalog, &dcx),
        plan.source
            .read(&plan.source_config, &plan.catalog, state_arg, &scx)
    );
    let (mut dest, mut src) = match (dest, src) {
        (Ok(d), Ok(s)) => (d, s),
        (dest, src) => {
            let failure = match (dest, src) {
                (Err(e), other) => {
                    stop(other).await;
                    start_failure(Role::Destination, e)
                }
                (other, Err(e)) => {
                    stop(other).await;
                    start_failure(Role::Source, e)
                }
                (Ok(_), Ok(_)) => unreachable!("handled above"),
            };
            return finish(&shared, SyncStatus::Failed, Some(failure));
        }
    };

    // Fires on cancel and on any failure that must stop both sides.
    let abort = hooks.cancel.child_token();
    let ticker = {
        let shared = shared.clone();
        let observer = hooks.observer.clone();
        let abort = abort.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PROGRESS_EVERY);
            loop {
                every.tick().await;
                if abort.is_cancelled() {
                    return;
                }
                let p = shared.lock().expect("engine lock").progress(started);
                observer.progress(&p);
            }
        })
    };
    let shared_context = || Context {
        shared: shared.clone(),
        log: hooks.log.clone(),
        state_sink: hooks.state_sink.clone(),
        config_sink: hooks.config_sink.clone(),
        abort: abort.clone(),
        max_line_bytes: plan.max_line_bytes,
        started,
    };
    let confirmer = tokio::spawn(confirm(
        std::mem::replace(&mut dest.stdout, crate::connector::Stdout::empty()),
        shared_context(),
    ));

    let mut dest_in = dest.stdin.take().expect("write has stdin");
    let pump_ctx = shared_context();
    let mut pump = Pump::new(names, &pump_ctx);
    let end = pump
        .run(
            std::mem::replace(&mut src.stdout, crate::connector::Stdout::empty()),
            &mut dest_in,
        )
        .await;

    let mut source_status: Option<ExitStatus> = None;
    // Whether the source's exit is waited for while the destination finishes.
    let mut source_exit_later = false;
    match end {
        PumpEnd::SourceDone => {
            // The source closed its output: it is ending. Only a source that
            // ended well completes the streams it did not say it completed,
            // so then its exit is waited for first; when it completed them
            // all, nothing the destination gets depends on its exit.
            let lines = pump.completions_missing();
            if lines.is_empty() {
                source_exit_later = true;
            } else {
                let status = exited(&mut src).await;
                let source_ok =
                    status.success() && shared.lock().expect("engine lock").source_error.is_none();
                if source_ok {
                    let _ = write_or_abort(&mut dest_in, &lines, &abort).await;
                }
                source_status = Some(status);
            }
        }
        PumpEnd::DestinationGone | PumpEnd::Aborted => {
            src.process.kill();
            let _ = src.process.wait().await;
        }
        PumpEnd::TooLong(e) => {
            shared.lock().expect("engine lock").set_fatal(Failure::new(
                FailureOrigin::Source,
                FailureType::SystemError,
                format!("{}: {e}", plan.source.reference()),
            ));
            src.process.kill();
            let _ = src.process.wait().await;
        }
    }
    // End of input for the destination.
    let _ = dest_in.shutdown().await;
    drop(dest_in);

    let user_cancelled = hooks.cancel.is_cancelled();
    let fatal = shared.lock().expect("engine lock").fatal.is_some();
    let dest_ended = async {
        if fatal && !user_cancelled {
            dest.process.kill();
            exited(&mut dest).await
        } else if user_cancelled {
            // Let the destination confirm what it has, within the grace period.
            match tokio::time::timeout(hooks.grace, exited(&mut dest)).await {
                Ok(s) => s,
                Err(_) => {
                    hooks.log.log(
                        "sluice",
                        LogLevel::Warn,
                        "The destination did not finish within the grace period; stopping it.",
                    );
                    dest.process.kill();
                    exited(&mut dest).await
                }
            }
        } else {
            tokio::select! {
                s = exited(&mut dest) => s,
                _ = abort.cancelled() => {
                    dest.process.kill();
                    exited(&mut dest).await
                }
            }
        }
    };
    // The source's exit and clean-up (a container's removal) are waited for
    // while the destination finishes.
    let source_ended = async {
        let status = if source_exit_later {
            Some(exited(&mut src).await)
        } else {
            None
        };
        clean_up(&mut src, &*hooks.log).await;
        status
    };
    let (dest_status, later) = tokio::join!(dest_ended, source_ended);
    source_status = source_status.or(later);
    // The destination has exited: its output ends, and with it the confirmer.
    let _ = confirmer.await;
    abort.cancel();
    ticker.abort();
    clean_up(&mut dest, &*hooks.log).await;

    let failure = {
        let s = shared.lock().expect("engine lock");
        decide(
            &s,
            user_cancelled,
            source_status,
            dest_status,
            &src,
            &dest,
            &plan,
        )
    };
    let status = match (&failure, user_cancelled) {
        (_, true) => SyncStatus::Cancelled,
        (Some(_), _) => SyncStatus::Failed,
        (None, _) => SyncStatus::Succeeded,
    };
    let report = finish(&shared, status, failure);
    hooks.log.log(
        "sluice",
        LogLevel::Info,
        &format!(
            "The sync {}: {} records, {} committed.",
            match report.status {
                SyncStatus::Succeeded => "succeeded",
                SyncStatus::Failed => "failed",
                SyncStatus::Cancelled => "was cancelled",
            },
            report.records,
            report.records_committed
        ),
    );
    report
}

/// Stops a connector that started when its peer did not.
async fn stop(started: Result<Running, ConnectorError>) {
    if let Ok(mut r) = started {
        r.process.kill();
        let _ = r.process.wait().await;
    }
}

async fn exited(r: &mut Running) -> ExitStatus {
    r.process.exited().await.unwrap_or_default()
}

/// Finishes what [`exited`] left of a connector's clean-up. A failure there
/// does not change how the sync went: the data is where it is, and only a
/// container is left for `sluice system sweep`.
async fn clean_up(r: &mut Running, log: &dyn LogSink) {
    if let Err(e) = r.process.wait().await {
        log.log("sluice", LogLevel::Warn, &e.to_string());
    }
}

/// Decides how the attempt ended, most telling cause first.
fn decide(
    s: &Shared,
    cancelled: bool,
    source_status: Option<ExitStatus>,
    dest_status: ExitStatus,
    src: &Running,
    dest: &Running,
    plan: &SyncPlan,
) -> Option<Failure> {
    if let Some(f) = &s.fatal {
        return Some(f.clone());
    }
    if cancelled {
        return Some(Failure::new(
            FailureOrigin::Platform,
            crate::model::FailureType::ManualCancellation,
            "the sync was cancelled",
        ));
    }
    if let Some(f) = &s.destination_error {
        return Some(f.clone());
    }
    if !dest_status.success() {
        return Some(exit_failure(
            Role::Destination,
            &plan.destination.reference().to_string(),
            dest_status,
            dest,
        ));
    }
    if let Some(f) = &s.source_error {
        return Some(f.clone());
    }
    if let Some(status) = source_status {
        if !status.success() {
            return Some(exit_failure(
                Role::Source,
                &plan.source.reference().to_string(),
                status,
                src,
            ));
        }
    }
    let unconfirmed = s.tracker.unconfirmed();
    if unconfirmed > 0 {
        return Some(Failure::new(
            FailureOrigin::Destination,
            FailureType::SystemError,
            format!(
                "the destination exited without emitting back {unconfirmed} state(s) it was sent, \
                 so the records after the last confirmed state are not known to be stored; \
                 the last committed state is kept and the next sync resumes from it"
            ),
        ));
    }
    None
}

fn exit_failure(role: Role, name: &str, status: ExitStatus, r: &Running) -> Failure {
    let tail = r.stderr_tail.text();
    let mut message = format!("{role} {name} {status}");
    if !tail.trim().is_empty() {
        message.push_str("; the end of its stderr:\n");
        message.push_str(
            &tail
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    Failure::new(origin_of(role), FailureType::SystemError, message)
}

/// What the pump and the confirmer share.
pub(crate) struct Context {
    shared: Arc<Mutex<Shared>>,
    log: Arc<dyn LogSink>,
    state_sink: Arc<dyn StateSink>,
    config_sink: Arc<dyn ConfigSink>,
    abort: CancellationToken,
    max_line_bytes: usize,
    /// When the attempt started, for its progress.
    started: Instant,
}

pub(crate) enum Keep {
    /// Forward the line as it is.
    Same,
    /// Forward these bytes (whole lines) instead.
    Replace(Vec<u8>),
    /// Forward nothing.
    Drop,
}

pub(crate) fn control(
    sink: &Arc<dyn ConfigSink>,
    log: &dyn LogSink,
    role: Role,
    c: ControlMessage,
) {
    let Some(update) = c.connector_config else {
        return;
    };
    let config = Value::Object(update.config);
    match sink.update(role, &config) {
        Ok(()) => log.log(
            "sluice",
            LogLevel::Info,
            &format!("The {role} updated its config (CONTROL message); the new config was saved."),
        ),
        Err(why) => log.log(
            "sluice",
            LogLevel::Warn,
            &format!("The {role} sent an updated config that was not saved: {why}"),
        ),
    }
}

/// Reads the destination's output: confirmed states, logs, errors.
async fn confirm(stdout: crate::connector::Stdout, cx: Context) {
    let mut reader = LineReader::new(stdout, cx.max_line_bytes);
    loop {
        let chunk = match reader.next_chunk().await {
            Ok(Some(c)) => c,
            Ok(None) | Err(CodecError::Io(_)) => return,
            Err(e) => {
                cx.shared
                    .lock()
                    .expect("engine lock")
                    .set_fatal(Failure::new(
                        FailureOrigin::Destination,
                        FailureType::SystemError,
                        format!("the destination's output: {e}"),
                    ));
                cx.abort.cancel();
                return;
            }
        };
        for line in lines(&chunk) {
            let msg = match Message::parse(line.text) {
                Ok(m) => m,
                Err(e) => {
                    cx.shared.lock().expect("engine lock").lines_skipped += 1;
                    cx.log.log(
                        "destination",
                        LogLevel::Warn,
                        &format!(
                            "Skipped a line that is not a protocol message ({e}): {}",
                            preview(line.text)
                        ),
                    );
                    continue;
                }
            };
            match msg {
                Message::State(state) => {
                    let confirmed = {
                        let mut shared = cx.shared.lock().expect("engine lock");
                        let commit = shared.tracker.from_destination(&state);
                        commit.map(|c| (c, shared.progress(cx.started)))
                    };
                    match confirmed {
                        Ok((commit, progress)) => {
                            let sink = cx.state_sink.clone();
                            let snapshot = commit.snapshot;
                            let saved = tokio::task::spawn_blocking(move || {
                                sink.commit(&snapshot, &progress)
                            })
                            .await
                            .unwrap_or_else(|e| Err(e.to_string()));
                            match saved {
                                Ok(()) => {
                                    cx.shared.lock().expect("engine lock").state_committed = true;
                                }
                                Err(why) => {
                                    cx.shared
                                        .lock()
                                        .expect("engine lock")
                                        .set_fatal(Failure::new(
                                            FailureOrigin::Platform,
                                            FailureType::SystemError,
                                            format!("could not save the committed state: {why}"),
                                        ));
                                    cx.abort.cancel();
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            cx.log.log("sluice", LogLevel::Error, &e.to_string());
                            cx.shared
                                .lock()
                                .expect("engine lock")
                                .set_fatal(Failure::new(
                                    FailureOrigin::Destination,
                                    FailureType::SystemError,
                                    e.to_string(),
                                ));
                            cx.abort.cancel();
                            return;
                        }
                    }
                }
                Message::Log(l) => cx.log.log("destination", l.level, &l.message),
                Message::Trace(t) => {
                    if let (TraceKind::Error, Some(e)) = (t.kind, t.error) {
                        cx.log.log("destination", LogLevel::Error, &e.message);
                        if let Some(i) = &e.internal_message {
                            cx.log.log("destination", LogLevel::Error, i);
                        }
                        cx.shared
                            .lock()
                            .expect("engine lock")
                            .destination_error
                            .get_or_insert_with(|| {
                                Failure::new(
                                    FailureOrigin::Destination,
                                    e.failure_type.unwrap_or(FailureType::SystemError),
                                    e.message,
                                )
                            });
                    }
                }
                Message::Control(c) => control(&cx.config_sink, &*cx.log, Role::Destination, c),
                other => cx.log.log(
                    "destination",
                    LogLevel::Debug,
                    &format!("Ignored a {} message.", other.kind()),
                ),
            }
        }
    }
}
