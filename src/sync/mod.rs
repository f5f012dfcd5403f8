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
pub mod tracker;

use crate::connector::{
    preview, Connector, ConnectorError, ExitStatus, LogSink, Role, RunContext, Running,
};
use crate::protocol::codec::{lines, CodecError, LineReader};
use crate::protocol::envelope::{self, MessageKind};
use crate::protocol::{
    now_millis, ConfiguredAirbyteCatalog, ControlMessage, Extra, FailureType, LogLevel, Message,
    StateSnapshot, StreamDescriptor, StreamStatus, StreamStatusTrace, TraceKind, TraceMessage,
};
use mapping::Mapping;
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracker::{StateTracker, TrackerError};

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
}

/// Receives each committed state. A sink that fails fails the sync: the
/// user asked for the state to be kept.
pub trait StateSink: Send + Sync {
    fn commit(&self, snapshot: &StateSnapshot) -> Result<(), String>;
}

/// Keeps nothing; for syncs run without a state file.
pub struct NoStateSink;

impl StateSink for NoStateSink {
    fn commit(&self, _: &StateSnapshot) -> Result<(), String> {
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

#[derive(Debug, Clone, Serialize)]
pub struct StreamProgress {
    pub namespace: Option<String>,
    pub name: String,
    pub records: u64,
    pub bytes: u64,
    pub records_committed: u64,
    pub checkpoints: u64,
    /// The source's estimate of the rows it will send, if it gave one.
    pub estimate: Option<u64>,
    pub status: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub streams: Vec<StreamProgress>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Succeeded,
    Failed,
    Cancelled,
}

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureOrigin {
    Source,
    Destination,
    Platform,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub origin: FailureOrigin,
    pub failure_type: &'static str,
    pub message: String,
}

impl Failure {
    fn new(origin: FailureOrigin, failure_type: FailureType, message: impl Into<String>) -> Self {
        Failure {
            origin,
            failure_type: failure_type.as_str(),
            message: message.into(),
        }
    }

    fn from_role(role: Role) -> FailureOrigin {
        match role {
            Role::Source => FailureOrigin::Source,
            Role::Destination => FailureOrigin::Destination,
        }
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
    completed: Vec<bool>,
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
                    status: self.statuses[i],
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
        completed: vec![false; n],
        source_error: None,
        destination_error: None,
        fatal: None,
        state_committed: false,
        lines_skipped: 0,
        records_dropped: 0,
    }));
    let finish = |shared: &Arc<Mutex<Shared>>, status: SyncStatus, failure: Option<Failure>| {
        let s = shared.lock().expect("engine lock");
        let progress = s.progress(started);
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
    let context = |role: Role| {
        let mut cx = RunContext::new(role, hooks.log.clone());
        cx.max_line_bytes = plan.max_line_bytes;
        cx.labels = plan.labels.clone();
        cx.labels.push(("sluice.role".into(), role.as_str().into()));
        cx
    };
    let (scx, dcx) = (context(Role::Source), context(Role::Destination));
    let start_failure = |role: Role, e: ConnectorError| {
        let failure_type = if e.is_config_error() {
            FailureType::ConfigError
        } else {
            FailureType::SystemError
        };
        Failure::new(Failure::from_role(role), failure_type, e.to_string())
    };

    hooks.log.log(
        "sluice",
        LogLevel::Info,
        &format!(
            "Starting the sync of {n} stream(s) from {} to {}.",
            plan.source.reference(),
            plan.destination.reference()
        ),
    );
    let mut dest = match plan
        .destination
        .write(&plan.destination_config, &dest_catalog, &dcx)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let f = start_failure(Role::Destination, e);
            return finish(&shared, SyncStatus::Failed, Some(f));
        }
    };
    let state_arg = plan.state.as_ref().map(StateSnapshot::to_file_value);
    let mut src = match plan
        .source
        .read(&plan.source_config, &plan.catalog, state_arg, &scx)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            dest.process.kill();
            let _ = dest.process.wait().await;
            let f = start_failure(Role::Source, e);
            return finish(&shared, SyncStatus::Failed, Some(f));
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
    let confirmer = tokio::spawn(confirm(
        std::mem::replace(&mut dest.stdout, Box::new(tokio::io::empty())),
        Context {
            shared: shared.clone(),
            log: hooks.log.clone(),
            observer: hooks.observer.clone(),
            state_sink: hooks.state_sink.clone(),
            config_sink: hooks.config_sink.clone(),
            abort: abort.clone(),
            reverse: reverse.clone(),
            max_line_bytes: plan.max_line_bytes,
        },
    ));

    let mut dest_in = dest.stdin.take().expect("write has stdin");
    let pump_ctx = Context {
        shared: shared.clone(),
        log: hooks.log.clone(),
        observer: hooks.observer.clone(),
        state_sink: hooks.state_sink.clone(),
        config_sink: hooks.config_sink.clone(),
        abort: abort.clone(),
        reverse,
        max_line_bytes: plan.max_line_bytes,
    };
    let mut pump = Pump::new(&plan, &pump_ctx);
    let end = pump
        .run(
            std::mem::replace(&mut src.stdout, Box::new(tokio::io::empty())),
            &mut dest_in,
        )
        .await;

    let mut source_status: Option<ExitStatus> = None;
    match end {
        PumpEnd::SourceDone => {
            // The source closed its output: it is ending. Only a source that
            // ended well completes the streams it did not say it completed.
            let status = wait(&mut src).await;
            let source_ok =
                status.success() && shared.lock().expect("engine lock").source_error.is_none();
            if source_ok {
                let lines = pump.completions_missing();
                if !lines.is_empty() {
                    let _ = write_or_abort(&mut dest_in, &lines, &abort).await;
                }
            }
            source_status = Some(status);
        }
        PumpEnd::DestinationGone(_) | PumpEnd::Aborted => {
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
    let dest_status = if fatal && !user_cancelled {
        dest.process.kill();
        wait(&mut dest).await
    } else if user_cancelled {
        // Let the destination confirm what it has, within the grace period.
        match tokio::time::timeout(hooks.grace, wait(&mut dest)).await {
            Ok(s) => s,
            Err(_) => {
                hooks.log.log(
                    "sluice",
                    LogLevel::Warn,
                    "The destination did not finish within the grace period; stopping it.",
                );
                dest.process.kill();
                wait(&mut dest).await
            }
        }
    } else {
        tokio::select! {
            s = wait(&mut dest) => s,
            _ = abort.cancelled() => {
                dest.process.kill();
                wait(&mut dest).await
            }
        }
    };
    // The destination has exited: its output ends, and with it the confirmer.
    let _ = confirmer.await;
    abort.cancel();
    ticker.abort();

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

async fn wait(r: &mut Running) -> ExitStatus {
    r.process.wait().await.unwrap_or(ExitStatus {
        code: None,
        signal: None,
        oom_killed: false,
        memory_limit: None,
    })
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
            FailureType::Unknown,
            "the sync was cancelled",
        ))
        .map(|mut f| {
            f.failure_type = "manual_cancellation";
            f
        });
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
    Failure::new(Failure::from_role(role), FailureType::SystemError, message)
}

struct Context {
    shared: Arc<Mutex<Shared>>,
    log: Arc<dyn LogSink>,
    observer: Arc<dyn SyncObserver>,
    state_sink: Arc<dyn StateSink>,
    config_sink: Arc<dyn ConfigSink>,
    abort: CancellationToken,
    reverse: mapping::ReverseMap,
    max_line_bytes: usize,
}

enum PumpEnd {
    SourceDone,
    DestinationGone(#[allow(dead_code)] std::io::Error),
    Aborted,
    TooLong(CodecError),
}

/// Writes to the destination unless the sync is aborted first.
async fn write_or_abort(
    dest_in: &mut (dyn AsyncWrite + Send + Unpin),
    bytes: &[u8],
    abort: &CancellationToken,
) -> Result<(), PumpEnd> {
    tokio::select! {
        biased;
        _ = abort.cancelled() => Err(PumpEnd::Aborted),
        r = dest_in.write_all(bytes) => r.map_err(PumpEnd::DestinationGone),
    }
}

/// Moves the source's output to the destination.
struct Pump<'a> {
    cx: &'a Context,
    identity: bool,
    mapping: &'a Mapping,
    /// Stream names as the source writes them, then as the destination
    /// should see them.
    names: Vec<(StreamDescriptor, StreamDescriptor)>,
    /// The stream of the previous record: records come in runs.
    last: usize,
    records: Vec<u64>,
    bytes: Vec<u64>,
    warned_unknown: Vec<StreamDescriptor>,
    out: Vec<u8>,
    completed: Vec<bool>,
}

impl<'a> Pump<'a> {
    fn new(plan: &'a SyncPlan, cx: &'a Context) -> Self {
        let names: Vec<(StreamDescriptor, StreamDescriptor)> = plan
            .catalog
            .streams
            .iter()
            .map(|s| {
                let d = s.stream.descriptor();
                let m = plan.mapping.map(&d);
                (d, m)
            })
            .collect();
        let n = names.len();
        Pump {
            cx,
            identity: plan.mapping.is_identity(),
            mapping: &plan.mapping,
            names,
            last: 0,
            records: vec![0; n],
            bytes: vec![0; n],
            warned_unknown: Vec::new(),
            out: Vec::with_capacity(256 * 1024),
            completed: vec![false; n],
        }
    }

    async fn run(
        &mut self,
        stdout: Box<dyn AsyncRead + Send + Unpin>,
        dest_in: &mut Box<dyn AsyncWrite + Send + Unpin>,
    ) -> PumpEnd {
        let mut reader = LineReader::new(stdout, self.cx.max_line_bytes);
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cx.abort.cancelled() => return PumpEnd::Aborted,
                r = reader.next_chunk() => r,
            };
            let chunk = match next {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.publish();
                    return PumpEnd::SourceDone;
                }
                Err(e @ CodecError::LineTooLong { .. }) => return PumpEnd::TooLong(e),
                Err(CodecError::Io(_)) => return PumpEnd::SourceDone,
            };
            let whole = self.process(&chunk);
            self.publish();
            let bytes: &[u8] = if whole { &chunk } else { &self.out };
            if !bytes.is_empty() {
                if let Err(end) = write_or_abort(dest_in.as_mut(), bytes, &self.cx.abort).await {
                    return end;
                }
            }
            self.out.clear();
        }
    }

    /// Adds this chunk's counts to the shared counters.
    fn publish(&mut self) {
        let mut s = self.cx.shared.lock().expect("engine lock");
        for (i, c) in s.tracker.streams.iter_mut().enumerate() {
            c.records += std::mem::take(&mut self.records[i]);
            c.bytes += std::mem::take(&mut self.bytes[i]);
        }
    }

    fn stream_index(&mut self, namespace: Option<&str>, name: &str) -> Option<usize> {
        let hit = |d: &StreamDescriptor| d.name == name && d.namespace.as_deref() == namespace;
        if self.names.get(self.last).is_some_and(|(d, _)| hit(d)) {
            return Some(self.last);
        }
        let i = self.names.iter().position(|(d, _)| hit(d))?;
        self.last = i;
        Some(i)
    }

    /// Handles a chunk of source lines. Returns true when the chunk can be
    /// forwarded exactly as it is; otherwise what to forward is in `out`.
    fn process(&mut self, chunk: &[u8]) -> bool {
        // `run_start` is where the current run of lines forwarded unchanged
        // began; a line that is changed or dropped ends the run.
        let mut run_start = 0;
        let mut changed = false;
        for line in lines(chunk) {
            let keep = match envelope::scan(line.text) {
                Ok(env) => match (env.kind, env.record) {
                    (MessageKind::Record, Some(r)) => {
                        match self.stream_index(r.namespace.as_deref(), &r.stream) {
                            Some(i) => {
                                self.records[i] += 1;
                                self.bytes[i] += r.data.len() as u64;
                                if self.identity {
                                    Keep::Same
                                } else {
                                    let mut buf = Vec::with_capacity(line.text.len() + 32);
                                    match mapping::rewrite_record(
                                        line.text,
                                        &self.names[i].1,
                                        &mut buf,
                                    ) {
                                        Ok(()) => Keep::Replace(buf),
                                        Err(_) => Keep::Drop,
                                    }
                                }
                            }
                            None => {
                                self.unknown_stream(r.namespace.as_deref(), &r.stream);
                                Keep::Drop
                            }
                        }
                    }
                    (kind, _) => self.control_line(kind, line.text),
                },
                Err(e) => {
                    self.cx.shared.lock().expect("engine lock").lines_skipped += 1;
                    self.cx.log.log(
                        "source",
                        LogLevel::Warn,
                        &format!(
                            "Skipped a line that is not a protocol message ({e}): {}",
                            preview(line.text)
                        ),
                    );
                    Keep::Drop
                }
            };
            match keep {
                Keep::Same => {}
                other => {
                    if !changed {
                        changed = true;
                    }
                    self.out.extend_from_slice(&chunk[run_start..line.start]);
                    if let Keep::Replace(bytes) = other {
                        self.out.extend_from_slice(&bytes);
                    }
                    run_start = line.end;
                }
            }
        }
        if !changed && chunk.ends_with(b"\n") {
            return true;
        }
        self.out.extend_from_slice(&chunk[run_start..]);
        if !self.out.is_empty() && !self.out.ends_with(b"\n") {
            self.out.push(b'\n');
        }
        false
    }

    fn unknown_stream(&mut self, namespace: Option<&str>, name: &str) {
        let d = StreamDescriptor::new(namespace, name);
        self.cx.shared.lock().expect("engine lock").records_dropped += 1;
        if !self.warned_unknown.contains(&d) {
            self.cx.log.log(
                "sluice",
                LogLevel::Warn,
                &format!("Dropping records of stream `{d}`, which is not in the catalog."),
            );
            self.warned_unknown.push(d);
        }
    }

    /// Any message but a RECORD. STATEs are tracked and forwarded, stream
    /// statuses forwarded, the rest logged.
    fn control_line(&mut self, kind: MessageKind, text: &[u8]) -> Keep {
        let msg = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.cx.shared.lock().expect("engine lock").lines_skipped += 1;
                self.cx.log.log(
                    "source",
                    LogLevel::Warn,
                    &format!(
                        "Skipped a {kind:?} line that does not match the protocol ({e}): {}",
                        preview(text)
                    ),
                );
                return Keep::Drop;
            }
        };
        match msg {
            Message::State(state) => {
                // Counts up to this state must be in the tracker first.
                self.publish();
                let mut s = self.cx.shared.lock().expect("engine lock");
                match s.tracker.from_source(state) {
                    Ok(forward) => Keep::Replace(Message::State(forward).to_line()),
                    Err(e) => {
                        drop(s);
                        self.cx
                            .log
                            .log("source", LogLevel::Warn, &format!("Skipped a state: {e}"));
                        Keep::Drop
                    }
                }
            }
            Message::Log(l) => {
                self.cx.log.log("source", l.level, &l.message);
                if let Some(trace) = &l.stack_trace {
                    self.cx.log.log("source", LogLevel::Debug, trace);
                }
                Keep::Drop
            }
            Message::Trace(t) => self.trace(t),
            Message::Control(c) => {
                control(&self.cx.config_sink, &*self.cx.log, Role::Source, c);
                Keep::Drop
            }
            other => {
                self.cx.log.log(
                    "source",
                    LogLevel::Debug,
                    &format!("Ignored a {} message.", other.kind()),
                );
                Keep::Drop
            }
        }
    }

    fn trace(&mut self, t: TraceMessage) -> Keep {
        match t.kind {
            TraceKind::Error => {
                let e = t.error.unwrap_or_else(|| crate::protocol::ErrorTrace {
                    message: "the source reported an error without a message".into(),
                    internal_message: None,
                    stack_trace: None,
                    failure_type: None,
                    stream_descriptor: None,
                    extra: Extra::new(),
                });
                self.cx.log.log("source", LogLevel::Error, &e.message);
                if let Some(i) = &e.internal_message {
                    self.cx.log.log("source", LogLevel::Error, i);
                }
                if let Some(st) = &e.stack_trace {
                    self.cx.log.log("source", LogLevel::Debug, st);
                }
                let mut s = self.cx.shared.lock().expect("engine lock");
                s.source_error.get_or_insert_with(|| {
                    Failure::new(
                        FailureOrigin::Source,
                        e.failure_type.unwrap_or(FailureType::SystemError),
                        e.message,
                    )
                });
                Keep::Drop
            }
            TraceKind::Estimate => {
                if let Some(est) = t.estimate {
                    let d = StreamDescriptor::new(est.namespace.as_deref(), &est.name);
                    let mut s = self.cx.shared.lock().expect("engine lock");
                    if let (Some(i), Some(rows)) = (s.tracker.index_of(&d), est.row_estimate) {
                        s.estimates[i] = Some(rows.max(0) as u64);
                    }
                }
                Keep::Drop
            }
            TraceKind::StreamStatus => {
                let Some(ss) = t.stream_status else {
                    return Keep::Drop;
                };
                let i = self
                    .cx
                    .shared
                    .lock()
                    .expect("engine lock")
                    .tracker
                    .index_of(&ss.stream_descriptor);
                let Some(i) = i else {
                    return Keep::Drop;
                };
                let label = match ss.status {
                    StreamStatus::Started => "started",
                    StreamStatus::Running => "running",
                    StreamStatus::Complete => "complete",
                    StreamStatus::Incomplete => "incomplete",
                    StreamStatus::Unknown => "unknown",
                };
                {
                    let mut s = self.cx.shared.lock().expect("engine lock");
                    s.statuses[i] = Some(label);
                    if ss.status == StreamStatus::Complete {
                        s.completed[i] = true;
                    }
                }
                if ss.status == StreamStatus::Complete {
                    self.completed[i] = true;
                }
                // Destinations learn a stream is complete from this (an
                // overwrite swaps its table in then).
                let mapped = StreamStatusTrace {
                    stream_descriptor: self.names[i].1.clone(),
                    ..ss
                };
                Keep::Replace(
                    Message::Trace(TraceMessage {
                        stream_status: Some(mapped),
                        ..t
                    })
                    .to_line(),
                )
            }
            TraceKind::Analytics | TraceKind::Unknown => {
                self.cx.log.log(
                    "source",
                    LogLevel::Debug,
                    &format!("Trace: {}", serde_json::to_string(&t).unwrap_or_default()),
                );
                Keep::Drop
            }
        }
    }

    /// STREAM_STATUS COMPLETE lines for the streams whose completion the
    /// source did not report; sent only when the source ended well.
    fn completions_missing(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (_, mapped)) in self.names.iter().enumerate() {
            if !self.completed[i] {
                out.extend_from_slice(
                    &Message::Trace(TraceMessage {
                        kind: TraceKind::StreamStatus,
                        emitted_at: now_millis() as f64,
                        error: None,
                        estimate: None,
                        stream_status: Some(StreamStatusTrace {
                            stream_descriptor: mapped.clone(),
                            status: StreamStatus::Complete,
                            reasons: Vec::new(),
                            extra: Extra::new(),
                        }),
                        analytics: None,
                        extra: Extra::new(),
                    })
                    .to_line(),
                );
            }
        }
        let _ = self.mapping;
        out
    }
}

enum Keep {
    /// Forward the line as it is.
    Same,
    /// Forward these bytes (whole lines) instead.
    Replace(Vec<u8>),
    /// Forward nothing.
    Drop,
}

fn control(sink: &Arc<dyn ConfigSink>, log: &dyn LogSink, role: Role, c: ControlMessage) {
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
async fn confirm(stdout: Box<dyn AsyncRead + Send + Unpin>, cx: Context) {
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
                    let confirmed = cx
                        .shared
                        .lock()
                        .expect("engine lock")
                        .tracker
                        .from_destination(&state);
                    match confirmed {
                        Ok(commit) => {
                            let sink = cx.state_sink.clone();
                            let snapshot = commit.snapshot;
                            let saved = tokio::task::spawn_blocking(move || sink.commit(&snapshot))
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
                            let failure_type = match e {
                                TrackerError::InvalidSource(_) => FailureType::SystemError,
                                _ => FailureType::SystemError,
                            };
                            cx.log.log("sluice", LogLevel::Error, &e.to_string());
                            cx.shared
                                .lock()
                                .expect("engine lock")
                                .set_fatal(Failure::new(
                                    FailureOrigin::Destination,
                                    failure_type,
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
        let _ = &cx.observer;
        let _ = &cx.reverse;
    }
}
