//! Connectors: the `Connector` trait and its runtimes.
//!
//! A connector only knows how to start one protocol command (`spec`,
//! `check`, `discover`, `read`, `write`) and hand back its pipes: see
//! [`Connector::start`]. Everything else (collecting a SPEC, a CATALOG or a
//! CONNECTION_STATUS, turning a failed exit into an error with the tail of
//! stderr) is written once here. What a runtime can do besides (parse its
//! references and options, install, pull, sweep, stop a run) is its
//! [`Runtime`]; [`registry`] asks them. A new runtime is its own module
//! plus one line in [`RUNTIMES`].
//!
//! This module never decides what a sync does with the messages; that is
//! `crate::sync`.

pub mod builtin;
pub mod config;
pub mod docker;
pub mod process;
pub mod python;
mod reference;
pub mod registry;

pub use reference::{ConnectorRef, RefError};
pub use registry::{resolve, Runtime, RuntimeEnv, RuntimeOptions};

/// Every runtime, in the order `sluice connector list` shows their
/// connectors.
pub static RUNTIMES: &[&dyn Runtime] = &[
    &builtin::RUNTIME,
    &process::RUNTIME,
    &python::RUNTIME,
    &docker::RUNTIME,
];

use crate::protocol::codec::{lines, CodecError, LineReader};
use crate::protocol::{
    AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectionStatus, ConnectorSpecification,
    FailureType, LogLevel, Message,
};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

/// The protocol command a connector is started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Spec,
    Check,
    Discover,
    Read,
    Write,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Spec => "spec",
            Command::Check => "check",
            Command::Discover => "discover",
            Command::Read => "read",
            Command::Write => "write",
        }
    }
}

/// Which side of a sync a connector runs on; names it in logs and errors.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Destination,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a protocol command is started with. The runtime decides how the
/// inputs reach the connector (files for processes and containers, values
/// for built-in connectors).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: Command,
    pub config: Option<Value>,
    pub catalog: Option<ConfiguredAirbyteCatalog>,
    /// The state in its file form (see `protocol::state`).
    pub state: Option<Value>,
}

impl Invocation {
    pub fn new(command: Command) -> Self {
        Invocation {
            command,
            config: None,
            catalog: None,
            state: None,
        }
    }
}

/// Where connector output that is not data goes: LOG messages, stderr lines,
/// lines that are not protocol JSON. Implementations redact secrets.
pub trait LogSink: Send + Sync {
    fn log(&self, origin: &str, level: LogLevel, message: &str);
}

/// A sink that drops everything; for callers that do not keep logs.
pub struct NoLog;

impl LogSink for NoLog {
    fn log(&self, _: &str, _: LogLevel, _: &str) {}
}

/// Reports progress of long connector work (a pip install, an image pull).
pub trait InstallProgress: Send + Sync {
    fn step(&self, message: &str);
}

impl InstallProgress for NoLog {
    fn step(&self, _: &str) {}
}

/// Context for starting one connector command.
#[derive(Clone)]
pub struct RunContext {
    /// The run (an inline sync, a job, one connector command) this belongs
    /// to: what runtimes stop when that run must stop at once.
    pub run: String,
    pub role: Role,
    pub log: Arc<dyn LogSink>,
    pub progress: Arc<dyn InstallProgress>,
    /// Labels a runtime may attach to what it starts (container labels).
    pub labels: Vec<(String, String)>,
    pub max_line_bytes: usize,
    /// Fires when the run is asked to stop: long preparation (an install)
    /// gives up then.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Shared by a sync's source and destination when both can hand rows
    /// over without JSON ([`Connector::hands_off_rows`]).
    pub handoff: Option<Arc<builtin::handoff::Handoff>>,
}

impl RunContext {
    pub fn new(run: &str, role: Role, log: Arc<dyn LogSink>) -> Self {
        RunContext {
            run: run.to_string(),
            role,
            log,
            progress: Arc::new(NoLog),
            labels: Vec::new(),
            max_line_bytes: crate::protocol::codec::DEFAULT_MAX_LINE_BYTES,
            cancel: tokio_util::sync::CancellationToken::new(),
            handoff: None,
        }
    }
}

/// How a connector ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Set by runtimes that can tell (containers).
    pub oom_killed: bool,
    /// Memory limit in bytes, when one applied; named in OOM errors.
    pub memory_limit: Option<u64>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.oom_killed
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.oom_killed {
            return match self.memory_limit {
                Some(limit) => write!(
                    f,
                    "was killed for exceeding its {} memory limit",
                    human_bytes(limit)
                ),
                None => f.write_str("was killed for running out of memory"),
            };
        }
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(sig)) => write!(f, "was killed by signal {sig} ({})", signal_name(sig)),
            (None, None) => f.write_str("ended without an exit status"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A connector's output: an OS pipe when the runtime has one (the engine
/// can then forward it without copying), else any stream.
pub enum Stdout {
    Pipe(tokio::net::unix::pipe::Receiver),
    Stream(Box<dyn AsyncRead + Send + Unpin>),
}

/// A connector's input, likewise.
pub enum Stdin {
    Pipe(tokio::net::unix::pipe::Sender),
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Stdout {
    pub fn empty() -> Self {
        Stdout::Stream(Box::new(tokio::io::empty()))
    }
}

impl AsyncRead for Stdout {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stdout::Pipe(p) => std::pin::Pin::new(p).poll_read(cx, buf),
            Stdout::Stream(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stdin {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stdin::Pipe(p) => std::pin::Pin::new(p).poll_write(cx, buf),
            Stdin::Stream(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stdin::Pipe(p) => std::pin::Pin::new(p).poll_flush(cx),
            Stdin::Stream(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stdin::Pipe(p) => std::pin::Pin::new(p).poll_shutdown(cx),
            Stdin::Stream(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A started connector command: its pipes and a handle to wait for or stop it.
pub struct Running {
    pub stdout: Stdout,
    /// Present for `write`.
    pub stdin: Option<Stdin>,
    pub process: Box<dyn Process>,
    /// The last lines the connector wrote to stderr, kept for error messages.
    pub stderr_tail: StderrTail,
}

/// A running connector.
#[async_trait]
pub trait Process: Send {
    /// Waits for the connector to end. Cleans up what the runtime created
    /// for it (temporary files, containers). Answers the same when called
    /// again.
    async fn wait(&mut self) -> Result<ExitStatus, ConnectorError>;
    /// Waits for the connector to exit and says how, but may leave a slow
    /// part of the clean-up (removing a container) to `wait`, which must
    /// still be called. Lets the engine act on an exit at once.
    async fn exited(&mut self) -> Result<ExitStatus, ConnectorError> {
        self.wait().await
    }
    /// Stops the connector now; `wait` still has to be called.
    fn kill(&mut self);
}

/// The last lines a connector wrote to stderr.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    const KEEP: usize = 20;

    pub fn push(&self, line: String) {
        let mut q = self.0.lock().expect("stderr tail lock");
        if q.len() == Self::KEEP {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The kept lines, joined; empty when there were none.
    pub fn text(&self) -> String {
        let q = self.0.lock().expect("stderr tail lock");
        q.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Reads a connector's stderr line by line into the log and the tail.
/// Returns when stderr closes.
pub async fn drain_stderr(
    stderr: impl AsyncRead + Unpin,
    origin: String,
    log: Arc<dyn LogSink>,
    tail: StderrTail,
) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end();
                if text.is_empty() {
                    continue;
                }
                log.log(&origin, LogLevel::Info, text);
                tail.push(text.to_string());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("could not start {connector}: {message}")]
    Start { connector: String, message: String },
    #[error("{connector} {command} failed: {message}")]
    Reported {
        connector: String,
        command: &'static str,
        message: String,
        failure_type: Option<FailureType>,
    },
    #[error("{connector} {command} {status}{}", stderr_suffix(.stderr))]
    Exited {
        connector: String,
        command: &'static str,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{connector} {command} printed no {expected} message{}", stderr_suffix(.stderr))]
    NoAnswer {
        connector: String,
        command: &'static str,
        expected: &'static str,
        stderr: String,
    },
    #[error("{connector}: {source}")]
    Codec {
        connector: String,
        #[source]
        source: CodecError,
    },
    #[error("{0}")]
    Unknown(String),
    #[error("{connector}: {message}")]
    Install { connector: String, message: String },
    #[error("{connector}: {source}")]
    Io {
        connector: String,
        #[source]
        source: std::io::Error,
    },
    /// The runtime itself failed (a container engine error).
    #[error("{connector}: {message}")]
    Runtime { connector: String, message: String },
    /// What the runtime needs is not there (no container engine answers, an
    /// image that may not be pulled); the user can fix it, and the hint
    /// says how.
    #[error("{message}")]
    Unavailable {
        connector: String,
        message: String,
        hint: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; the end of its stderr:\n{}", indent(stderr))
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConnectorError {
    /// Whether the error lies in what the user gave (exit 2) rather than in
    /// the connector or the machine (exit 1).
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            ConnectorError::Unknown(_)
                | ConnectorError::Unavailable { .. }
                | ConnectorError::Reported {
                    failure_type: Some(FailureType::ConfigError),
                    ..
                }
        )
    }
}

impl ConnectorError {
    /// What to do about it, when the error knows.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ConnectorError::Unavailable { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// A connector: one of the runtimes, behind one interface.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The reference the user wrote (`exec:/bin/x`, `python:pkg==1.0`, `sample`).
    fn reference(&self) -> &ConnectorRef;

    /// Starts one protocol command.
    async fn start(&self, inv: Invocation, cx: &RunContext) -> Result<Running, ConnectorError>;

    /// Whether it can be the source or the destination of a sync; `None`
    /// when that cannot be told without running it.
    fn plays(&self, _role: Role) -> Option<bool> {
        None
    }

    /// Whether it runs in sluice's process and can hand rows to, or take
    /// them from, another such connector through a shared handoff.
    fn hands_off_rows(&self) -> bool {
        false
    }

    /// Whether its `check` is cheap enough to run before every sync, so
    /// that a config that cannot work fails before any record is read.
    fn checks_cheaply(&self) -> bool {
        false
    }

    /// Checks what the runtime needs is there (a container engine), before
    /// anything else runs; a no-op for most runtimes.
    async fn preflight(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Prepares the connector for use (installs it); a no-op for most runtimes.
    async fn prepare(&self, _cx: &RunContext) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn spec(&self, cx: &RunContext) -> Result<ConnectorSpecification, ConnectorError> {
        let answer = run_to_end(self, Invocation::new(Command::Spec), cx, "SPEC").await?;
        match answer {
            Message::Spec(spec) => Ok(spec),
            _ => unreachable!("run_to_end returns the expected message"),
        }
    }

    async fn check(
        &self,
        config: &Value,
        cx: &RunContext,
    ) -> Result<ConnectionStatus, ConnectorError> {
        let mut inv = Invocation::new(Command::Check);
        inv.config = Some(config.clone());
        match run_to_end(self, inv, cx, "CONNECTION_STATUS").await? {
            Message::ConnectionStatus(status) => Ok(status),
            _ => unreachable!("run_to_end returns the expected message"),
        }
    }

    async fn discover(
        &self,
        config: &Value,
        cx: &RunContext,
    ) -> Result<AirbyteCatalog, ConnectorError> {
        let mut inv = Invocation::new(Command::Discover);
        inv.config = Some(config.clone());
        match run_to_end(self, inv, cx, "CATALOG").await? {
            Message::Catalog(catalog) => Ok(catalog),
            _ => unreachable!("run_to_end returns the expected message"),
        }
    }

    async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        state: Option<Value>,
        cx: &RunContext,
    ) -> Result<Running, ConnectorError> {
        let mut inv = Invocation::new(Command::Read);
        inv.config = Some(config.clone());
        inv.catalog = Some(catalog.clone());
        inv.state = state;
        self.start(inv, cx).await
    }

    async fn write(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        cx: &RunContext,
    ) -> Result<Running, ConnectorError> {
        let mut inv = Invocation::new(Command::Write);
        inv.config = Some(config.clone());
        inv.catalog = Some(catalog.clone());
        self.start(inv, cx).await
    }
}

/// Runs a command that answers with one message (SPEC, CONNECTION_STATUS,
/// CATALOG) and returns that message. LOG messages and stderr go to the log;
/// a TRACE ERROR or a failed exit is an error that carries the connector's
/// own words.
async fn run_to_end<C: Connector + ?Sized>(
    connector: &C,
    inv: Invocation,
    cx: &RunContext,
    expected: &'static str,
) -> Result<Message, ConnectorError> {
    let command = inv.command.as_str();
    let name = connector.reference().to_string();
    let mut running = connector.start(inv, cx).await?;
    let mut reader = LineReader::new(&mut running.stdout, cx.max_line_bytes);
    let mut answer: Option<Message> = None;
    let mut reported: Option<(String, Option<FailureType>)> = None;
    let origin = cx.role.as_str();
    let read_result: Result<(), CodecError> = async {
        while let Some(chunk) = reader.next_chunk().await? {
            for line in lines(&chunk) {
                let line = line.text;
                match Message::parse(line) {
                    Ok(m) if m.kind() == expected => {
                        answer.get_or_insert(m);
                    }
                    Ok(Message::Log(l)) => cx.log.log(origin, l.level, &l.message),
                    Ok(Message::Trace(t)) => {
                        if let Some(e) = t.error {
                            cx.log.log(origin, LogLevel::Error, &e.message);
                            if let Some(internal) = &e.internal_message {
                                cx.log.log(origin, LogLevel::Debug, internal);
                            }
                            reported.get_or_insert((e.message, e.failure_type));
                        }
                    }
                    Ok(other) => cx.log.log(
                        origin,
                        LogLevel::Debug,
                        &format!("ignored a {} message", other.kind()),
                    ),
                    Err(e) => cx.log.log(
                        origin,
                        LogLevel::Warn,
                        &format!(
                            "skipped a line that is not a protocol message ({e}): {}",
                            preview(line)
                        ),
                    ),
                }
            }
        }
        Ok(())
    }
    .await;
    drop(reader);
    if let Err(source) = read_result {
        running.process.kill();
        let _ = running.process.wait().await;
        return Err(ConnectorError::Codec {
            connector: name,
            source,
        });
    }
    let status = running.process.wait().await?;
    if let Some((message, failure_type)) = reported {
        return Err(ConnectorError::Reported {
            connector: name,
            command,
            message,
            failure_type,
        });
    }
    if !status.success() {
        return Err(ConnectorError::Exited {
            connector: name,
            command,
            status,
            stderr: running.stderr_tail.text(),
        });
    }
    answer.ok_or_else(|| ConnectorError::NoAnswer {
        connector: name,
        command,
        expected,
        stderr: running.stderr_tail.text(),
    })
}

/// The start of a line, for a log message about it.
pub fn preview(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    if line.len() > MAX {
        format!("{text}… ({} bytes)", line.len())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_reads_well() {
        let s = ExitStatus {
            code: Some(3),
            ..Default::default()
        };
        assert_eq!(s.to_string(), "exited with status 3");
        let s = ExitStatus {
            signal: Some(9),
            ..Default::default()
        };
        assert_eq!(s.to_string(), "was killed by signal 9 (SIGKILL)");
        let s = ExitStatus {
            code: Some(137),
            oom_killed: true,
            memory_limit: Some(512 * 1024 * 1024),
            ..Default::default()
        };
        assert_eq!(
            s.to_string(),
            "was killed for exceeding its 512 MiB memory limit"
        );
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let t = StderrTail::default();
        for i in 0..30 {
            t.push(format!("line {i}"));
        }
        let text = t.text();
        assert!(text.starts_with("line 10\n"));
        assert!(text.ends_with("line 29"));
    }
}
