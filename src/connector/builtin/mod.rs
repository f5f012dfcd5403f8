//! Built-in native connectors, run inside sluice with the same protocol
//! semantics as any other connector.
//!
//! Each command runs on its own thread, writing protocol lines to an OS pipe
//! and (for `write`) reading them from another, so the engine treats a
//! built-in connector exactly like a process: same codec, same
//! backpressure, same bounds on memory. Connector code is plain blocking
//! Rust. A connector that returns an error or panics ends the way an
//! Airbyte connector does: a TRACE ERROR message and exit status 1.

mod devnull;
mod files;
pub mod handoff;
mod postgres;
mod sample;
mod source_file;

use super::registry::Installed;
use super::{
    Command, Connector, ConnectorError, ConnectorRef, ExitStatus, Invocation, Process, Role,
    RunContext, Running, Runtime, RuntimeEnv, StderrTail,
};
use crate::protocol::{
    now_millis, AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectionStatus, ConnectionStatusKind,
    ConnectorSpecification, ErrorTrace, Extra, FailureType, LogLevel, Message, StateMessage,
    StreamDescriptor, StreamStatus, StreamStatusTrace, TraceKind, TraceMessage,
};
use async_trait::async_trait;
use serde_json::Value;
use std::io::{BufRead, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a built-in connector reads or writes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Source,
    Destination,
    /// One name that serves as a source and as a destination (`postgres`).
    Both,
}

/// An error a built-in connector reports, as an Airbyte connector would.
#[derive(Debug)]
pub struct BuiltinError {
    pub message: String,
    pub failure_type: FailureType,
}

impl BuiltinError {
    /// The user's config or input is wrong.
    pub fn config(message: impl Into<String>) -> Self {
        BuiltinError {
            message: message.into(),
            failure_type: FailureType::ConfigError,
        }
    }

    /// Something outside the config failed.
    pub fn system(message: impl Into<String>) -> Self {
        BuiltinError {
            message: message.into(),
            failure_type: FailureType::SystemError,
        }
    }
}

impl From<std::io::Error> for BuiltinError {
    fn from(e: std::io::Error) -> Self {
        BuiltinError::system(e.to_string())
    }
}

pub type BuiltinResult<T> = Result<T, BuiltinError>;

/// A native connector. Sources implement `discover` and `read`;
/// destinations implement `write`.
pub trait Builtin: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn kind(&self) -> Kind;
    fn description(&self) -> &'static str;
    fn spec(&self) -> ConnectorSpecification;
    /// Checks the config can work (paths exist, and so on).
    fn check(&self, config: &Value) -> BuiltinResult<()>;

    fn discover(&self, _config: &Value) -> BuiltinResult<AirbyteCatalog> {
        Err(BuiltinError::config(format!(
            "{} is a destination; it has no streams to discover",
            self.name()
        )))
    }

    fn read(
        &self,
        _config: &Value,
        _catalog: &ConfiguredAirbyteCatalog,
        _state: Option<&Value>,
        _out: &mut Output,
    ) -> BuiltinResult<()> {
        Err(BuiltinError::config(format!(
            "{} is a destination; it cannot be read from",
            self.name()
        )))
    }

    fn write(
        &self,
        _config: &Value,
        _catalog: &ConfiguredAirbyteCatalog,
        _input: &mut dyn BufRead,
        _out: &mut Output,
    ) -> BuiltinResult<()> {
        Err(BuiltinError::config(format!(
            "{} is a source; it cannot be written to",
            self.name()
        )))
    }

    /// Whether it can hand rows to (as a source) or take rows from (as a
    /// destination) another such connector through a [`handoff::Handoff`].
    fn hands_off_rows(&self) -> bool {
        false
    }
}

/// Every built-in connector.
pub fn all() -> Vec<Arc<dyn Builtin>> {
    vec![
        Arc::new(sample::Sample),
        Arc::new(source_file::FileSource),
        Arc::new(files::FileDestination::jsonl()),
        Arc::new(files::FileDestination::csv()),
        Arc::new(devnull::DevNull),
        Arc::new(postgres::Postgres),
    ]
}

/// The built-in connector of that name.
pub fn connector(
    name: &str,
    reference: ConnectorRef,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    let builtin = all()
        .into_iter()
        .find(|b| b.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = all().iter().map(|b| b.name()).collect();
            ConnectorError::Unknown(format!(
                "there is no built-in connector named `{name}` (built in: {}); \
                 for others write exec:PATH or python:PACKAGE==VERSION",
                names.join(", ")
            ))
        })?;
    Ok(Arc::new(BuiltinConnector { reference, builtin }))
}

/// A source that sends nothing, for clearing a connection's data the Airbyte
/// way: the destination overwrites the streams with no records. Not listed
/// among the built-in connectors: users have no use for it.
pub fn empty_source() -> Arc<dyn Connector> {
    Arc::new(BuiltinConnector {
        reference: ConnectorRef::new(ConnectorRef::BUILTIN, "empty"),
        builtin: Arc::new(Empty),
    })
}

/// Native connectors compiled into sluice: `sample`, `builtin:jsonl`.
pub struct BuiltinRuntime;

pub static RUNTIME: BuiltinRuntime = BuiltinRuntime;

impl BuiltinRuntime {
    fn info(b: &dyn Builtin) -> Installed {
        Installed {
            reference: b.name().to_string(),
            runtime: ConnectorRef::BUILTIN.into(),
            kind: match b.kind() {
                Kind::Source => "source",
                Kind::Destination => "destination",
                Kind::Both => "source, destination",
            }
            .into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: b.description().into(),
            location: None,
        }
    }
}

#[async_trait]
impl Runtime for BuiltinRuntime {
    fn name(&self) -> &'static str {
        ConnectorRef::BUILTIN
    }

    fn form(&self) -> &'static str {
        "builtin:NAME"
    }

    fn parse(&self, target: &str) -> Result<String, String> {
        let name = target.trim();
        if name.is_empty() {
            return Err("nothing follows the `:`".into());
        }
        Ok(name.to_string())
    }

    fn connector(
        &self,
        reference: &ConnectorRef,
        _env: &RuntimeEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        connector(reference.target(), reference.clone())
    }

    /// A built-in connector is installed with sluice: its description.
    async fn install(
        &self,
        reference: &ConnectorRef,
        _env: &RuntimeEnv,
        _cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        let name = reference.target();
        all()
            .into_iter()
            .find(|b| b.name() == name)
            .map(|b| Some(Self::info(&*b)))
            .ok_or_else(|| {
                ConnectorError::Unknown(format!("there is no built-in connector named `{name}`"))
            })
    }

    fn installed(&self, _env: &RuntimeEnv) -> Vec<Installed> {
        all().iter().map(|b| Self::info(&**b)).collect()
    }
}

struct Empty;

impl Builtin for Empty {
    fn name(&self) -> &'static str {
        "empty"
    }
    fn kind(&self) -> Kind {
        Kind::Source
    }
    fn description(&self) -> &'static str {
        "Sends no records (clears streams in a destination)."
    }
    fn spec(&self) -> ConnectorSpecification {
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: serde_json::json!({"type": "object"}),
            supports_incremental: None,
            supported_destination_sync_modes: Vec::new(),
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }
    fn check(&self, _config: &Value) -> BuiltinResult<()> {
        Ok(())
    }
    fn discover(&self, _config: &Value) -> BuiltinResult<AirbyteCatalog> {
        Ok(AirbyteCatalog::default())
    }
    fn read(
        &self,
        _config: &Value,
        _catalog: &ConfiguredAirbyteCatalog,
        _state: Option<&Value>,
        _out: &mut Output,
    ) -> BuiltinResult<()> {
        Ok(())
    }
}

struct BuiltinConnector {
    reference: ConnectorRef,
    builtin: Arc<dyn Builtin>,
}

#[async_trait]
impl Connector for BuiltinConnector {
    fn reference(&self) -> &ConnectorRef {
        &self.reference
    }

    fn plays(&self, role: Role) -> Option<bool> {
        Some(match (self.builtin.kind(), role) {
            (Kind::Both, _) => true,
            (Kind::Source, r) => r == Role::Source,
            (Kind::Destination, r) => r == Role::Destination,
        })
    }

    /// A built-in connector's check starts no process.
    fn checks_cheaply(&self) -> bool {
        true
    }

    fn hands_off_rows(&self) -> bool {
        self.builtin.hands_off_rows()
    }

    async fn start(&self, inv: Invocation, cx: &RunContext) -> Result<Running, ConnectorError> {
        let io = |source| ConnectorError::Io {
            connector: self.reference.to_string(),
            source,
        };
        let (out_read, out_write) = std::io::pipe().map_err(io)?;
        let (in_read, in_write) = if inv.command == Command::Write {
            let (r, w) = std::io::pipe().map_err(io)?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        grow_pipe(&out_write);
        if let Some(w) = &in_write {
            grow_pipe(w);
        }
        let stdout =
            tokio::net::unix::pipe::Receiver::from_owned_fd(out_read.into()).map_err(io)?;
        let stdin = in_write
            .map(|w| tokio::net::unix::pipe::Sender::from_owned_fd(w.into()))
            .transpose()
            .map_err(io)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let builtin = self.builtin.clone();
        let thread_cancel = cancel.clone();
        let handoff = cx.handoff.clone();
        std::thread::Builder::new()
            .name(format!("sluice-{}", builtin.name()))
            .spawn(move || {
                let mut out = Output::new(Box::new(out_write), thread_cancel);
                out.handoff = handoff;
                let code = run_command(builtin.as_ref(), inv, in_read, &mut out);
                let _ = out.flush();
                drop(out);
                let _ = done_tx.send(code);
            })
            .map_err(io)?;
        Ok(Running {
            stdout: super::Stdout::Pipe(stdout),
            stdin: stdin.map(super::Stdin::Pipe),
            process: Box::new(BuiltinProcess {
                done: Some(done_rx),
                code: None,
                cancel,
            }),
            stderr_tail: StderrTail::default(),
        })
    }
}

fn grow_pipe(fd: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: F_SETPIPE_SZ on a pipe we own only changes its buffer size.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

/// Runs one command to its end; returns the exit code.
fn run_command(
    b: &dyn Builtin,
    inv: Invocation,
    input: Option<std::io::PipeReader>,
    out: &mut Output,
) -> i32 {
    let config = inv.config.unwrap_or(Value::Null);
    let catalog = inv.catalog.unwrap_or_default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> BuiltinResult<()> {
        match inv.command {
            Command::Spec => out.message(&Message::Spec(b.spec())),
            Command::Check => {
                let status = match b.check(&config) {
                    Ok(()) => ConnectionStatus {
                        status: ConnectionStatusKind::Succeeded,
                        message: None,
                        extra: Extra::new(),
                    },
                    Err(e) => ConnectionStatus {
                        status: ConnectionStatusKind::Failed,
                        message: Some(e.message),
                        extra: Extra::new(),
                    },
                };
                out.message(&Message::ConnectionStatus(status))
            }
            Command::Discover => {
                let catalog = b.discover(&config)?;
                out.message(&Message::Catalog(catalog))
            }
            Command::Read => b.read(&config, &catalog, inv.state.as_ref(), out),
            Command::Write => {
                let pipe = input.expect("write has an input pipe");
                let mut reader = std::io::BufReader::with_capacity(256 * 1024, pipe);
                b.write(&config, &catalog, &mut reader, out)
            }
        }
    }));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            // A closed pipe means the engine stopped listening: nothing to tell.
            if !out.closed {
                let _ = out.error(&e);
            }
            1
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let _ = out.error(&BuiltinError::system(format!(
                "{} crashed: {what}",
                b.name()
            )));
            1
        }
    }
}

struct BuiltinProcess {
    done: Option<tokio::sync::oneshot::Receiver<i32>>,
    /// The thread's exit code, once it is known.
    code: Option<i32>,
    cancel: Arc<AtomicBool>,
}

#[async_trait]
impl Process for BuiltinProcess {
    async fn wait(&mut self) -> Result<ExitStatus, ConnectorError> {
        if let Some(rx) = self.done.take() {
            self.code = Some(rx.await.unwrap_or(1));
        }
        Ok(ExitStatus {
            code: Some(self.code.unwrap_or(1)),
            ..ExitStatus::default()
        })
    }

    /// Asks the thread to stop; it also stops when its pipes close.
    fn kill(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The start of a RECORD line written by hand for speed, up to the key
/// after the stream: `{"type":"RECORD","record":{["namespace":NS,]"stream":S,`.
pub fn record_head(stream: &StreamDescriptor) -> Vec<u8> {
    let mut head = b"{\"type\":\"RECORD\",\"record\":{".to_vec();
    if let Some(ns) = &stream.namespace {
        head.extend_from_slice(b"\"namespace\":");
        head.extend_from_slice(serde_json::json!(ns).to_string().as_bytes());
        head.push(b',');
    }
    head.extend_from_slice(b"\"stream\":");
    head.extend_from_slice(serde_json::json!(stream.name).to_string().as_bytes());
    head.push(b',');
    head
}

/// Where a built-in connector writes its protocol messages.
pub struct Output {
    w: BufWriter<Box<dyn Write + Send>>,
    cancel: Arc<AtomicBool>,
    /// Set once a write failed because the reader went away.
    closed: bool,
    /// Where rows meet the other end of the sync, when the engine made one.
    pub handoff: Option<Arc<handoff::Handoff>>,
}

impl Output {
    fn new(w: Box<dyn Write + Send>, cancel: Arc<AtomicBool>) -> Self {
        Output {
            w: BufWriter::with_capacity(256 * 1024, w),
            cancel,
            closed: false,
            handoff: None,
        }
    }

    /// An output into memory, for tests of a connector's logic.
    #[cfg(test)]
    pub fn capture() -> (Self, Arc<std::sync::Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = Output::new(
            Box::new(Shared(buf.clone())),
            Arc::new(AtomicBool::new(false)),
        );
        (out, buf)
    }

    /// Whether sluice asked the connector to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Fails with a stop error when cancelled; call it in long loops.
    pub fn check_cancel(&self) -> BuiltinResult<()> {
        if self.cancelled() {
            Err(BuiltinError::system("stopped by sluice"))
        } else {
            Ok(())
        }
    }

    /// Raw bytes of one or more whole protocol lines.
    pub fn raw(&mut self, bytes: &[u8]) -> BuiltinResult<()> {
        self.w.write_all(bytes).map_err(|e| self.io_error(e))
    }

    pub fn message(&mut self, m: &Message) -> BuiltinResult<()> {
        let line = m.to_line();
        self.raw(&line)
    }

    pub fn log(&mut self, level: LogLevel, text: impl Into<String>) -> BuiltinResult<()> {
        self.message(&Message::log(level, text))
    }

    pub fn state(&mut self, state: StateMessage) -> BuiltinResult<()> {
        self.message(&Message::State(state))
    }

    pub fn stream_status(
        &mut self,
        stream: &StreamDescriptor,
        status: StreamStatus,
    ) -> BuiltinResult<()> {
        self.message(&Message::Trace(TraceMessage {
            kind: TraceKind::StreamStatus,
            emitted_at: now_millis() as f64,
            error: None,
            estimate: None,
            stream_status: Some(StreamStatusTrace {
                stream_descriptor: stream.clone(),
                status,
                reasons: Vec::new(),
                extra: Extra::new(),
            }),
            analytics: None,
            extra: Extra::new(),
        }))
    }

    fn error(&mut self, e: &BuiltinError) -> BuiltinResult<()> {
        self.message(&Message::Trace(TraceMessage {
            kind: TraceKind::Error,
            emitted_at: now_millis() as f64,
            error: Some(ErrorTrace {
                message: e.message.clone(),
                internal_message: None,
                stack_trace: None,
                failure_type: Some(e.failure_type),
                stream_descriptor: None,
                extra: Extra::new(),
            }),
            estimate: None,
            stream_status: None,
            analytics: None,
            extra: Extra::new(),
        }))?;
        self.flush()
    }

    /// Pushes buffered lines to sluice now (before emitting a state back,
    /// for instance, so the engine sees it without delay).
    pub fn flush(&mut self) -> BuiltinResult<()> {
        self.w.flush().map_err(|e| self.io_error(e))
    }

    fn io_error(&mut self, e: std::io::Error) -> BuiltinError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.closed = true;
            BuiltinError::system("sluice stopped reading")
        } else {
            BuiltinError::system(e.to_string())
        }
    }
}

/// The stream a configured stream is written to, for error messages.
pub fn describe(stream: &StreamDescriptor) -> String {
    format!("`{stream}`")
}

/// Reads a typed config, naming the connector in the error.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    name: &str,
    config: &Value,
) -> BuiltinResult<T> {
    serde_json::from_value(config.clone())
        .map_err(|e| BuiltinError::config(format!("invalid {name} config: {e}")))
}
