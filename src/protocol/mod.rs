//! The Airbyte Protocol: message types, catalogs, state files and the line codec.
//!
//! Types follow `airbyte_protocol.yaml` (v0) field for field, including the
//! camelCase names the protocol kept (`connectionStatus`, `sourceStats`).
//! Every object type keeps the fields it does not know in `extra`, so a
//! message passed through sluice reaches the other side unchanged.
//!
//! This module never does I/O beyond byte buffers handed to it and never
//! parses a RECORD's `data` on the hot path: see [`envelope`].

pub mod catalog;
pub mod codec;
pub mod envelope;
#[cfg(target_arch = "x86_64")]
mod envelope_fast;
pub mod state;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub use catalog::*;
pub use state::*;

/// Fields of a protocol object that sluice does not model, kept as they came.
pub type Extra = Map<String, Value>;

/// One line of the protocol, in the protocol's own wire shape: a `type` and a
/// field named after it. [`Message`] is the typed view of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireMessage {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<ConnectorSpecification>,
    #[serde(rename = "connectionStatus", skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<ConnectionStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<AirbyteCatalog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_catalog: Option<DestinationCatalog>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A protocol message, typed.
#[derive(Debug, Clone)]
pub enum Message {
    Record(RecordMessage),
    State(StateMessage),
    Log(LogMessage),
    Spec(ConnectorSpecification),
    ConnectionStatus(ConnectionStatus),
    Catalog(AirbyteCatalog),
    Trace(TraceMessage),
    Control(ControlMessage),
    DestinationCatalog(DestinationCatalog),
}

/// Why a line could not be read as a protocol message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("a {0} message without its `{1}` field")]
    MissingBody(String, &'static str),
}

impl Message {
    /// Parses one protocol line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Message, MessageError> {
        let wire: WireMessage = serde_json::from_slice(line)?;
        Message::try_from(wire)
    }

    /// The message as one line of JSON, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(&WireMessage::from(self.clone()))
            .expect("protocol messages always serialize");
        line.push(b'\n');
        line
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Message::Record(_) => "RECORD",
            Message::State(_) => "STATE",
            Message::Log(_) => "LOG",
            Message::Spec(_) => "SPEC",
            Message::ConnectionStatus(_) => "CONNECTION_STATUS",
            Message::Catalog(_) => "CATALOG",
            Message::Trace(_) => "TRACE",
            Message::Control(_) => "CONTROL",
            Message::DestinationCatalog(_) => "DESTINATION_CATALOG",
        }
    }

    pub fn log(level: LogLevel, message: impl Into<String>) -> Message {
        Message::Log(LogMessage {
            level,
            message: message.into(),
            stack_trace: None,
            extra: Extra::new(),
        })
    }
}

impl TryFrom<WireMessage> for Message {
    type Error = MessageError;

    fn try_from(wire: WireMessage) -> Result<Self, MessageError> {
        fn body<T>(kind: &str, field: &'static str, v: Option<T>) -> Result<T, MessageError> {
            v.ok_or_else(|| MessageError::MissingBody(kind.to_string(), field))
        }
        let k = wire.kind.as_str();
        Ok(match k {
            "RECORD" => Message::Record(body(k, "record", wire.record)?),
            "STATE" => Message::State(body(k, "state", wire.state)?),
            "LOG" => Message::Log(body(k, "log", wire.log)?),
            "SPEC" => Message::Spec(body(k, "spec", wire.spec)?),
            "CONNECTION_STATUS" => {
                Message::ConnectionStatus(body(k, "connectionStatus", wire.connection_status)?)
            }
            "CATALOG" => Message::Catalog(body(k, "catalog", wire.catalog)?),
            "TRACE" => Message::Trace(body(k, "trace", wire.trace)?),
            "CONTROL" => Message::Control(body(k, "control", wire.control)?),
            "DESTINATION_CATALOG" => Message::DestinationCatalog(body(
                k,
                "destination_catalog",
                wire.destination_catalog,
            )?),
            other => return Err(MessageError::UnknownType(other.to_string())),
        })
    }
}

impl From<Message> for WireMessage {
    fn from(m: Message) -> Self {
        let mut w = WireMessage {
            kind: m.kind().to_string(),
            ..WireMessage::default()
        };
        match m {
            Message::Record(r) => w.record = Some(r),
            Message::State(s) => w.state = Some(s),
            Message::Log(l) => w.log = Some(l),
            Message::Spec(s) => w.spec = Some(s),
            Message::ConnectionStatus(c) => w.connection_status = Some(c),
            Message::Catalog(c) => w.catalog = Some(c),
            Message::Trace(t) => w.trace = Some(t),
            Message::Control(c) => w.control = Some(c),
            Message::DestinationCatalog(c) => w.destination_catalog = Some(c),
        }
        w
    }
}

/// Milliseconds since the Unix epoch, the protocol's `emitted_at`.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub stream: String,
    pub data: Value,
    pub emitted_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RecordMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_reference: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordMeta {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<RecordMetaChange>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordMetaChange {
    pub field: String,
    /// `NULLED` or `TRUNCATED`.
    pub change: String,
    /// One of the protocol's `*_LIMITATION`, `*_ERROR` reasons.
    pub reason: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Fatal => "FATAL",
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogMessage {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ConnectorSpecification {
    #[serde(
        rename = "documentationUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub documentation_url: Option<String>,
    #[serde(
        rename = "changelogUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changelog_url: Option<String>,
    #[serde(rename = "connectionSpecification")]
    pub connection_specification: Value,
    #[serde(
        rename = "supportsIncremental",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_incremental: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_destination_sync_modes: Vec<DestinationSyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[schema(as = CheckStatus)]
pub enum ConnectionStatusKind {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = CheckResult)]
pub struct ConnectionStatus {
    pub status: ConnectionStatusKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceMessage {
    /// `ERROR`, `ESTIMATE`, `STREAM_STATUS` or `ANALYTICS`.
    #[serde(rename = "type")]
    pub kind: TraceKind,
    pub emitted_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<EstimateTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_status: Option<StreamStatusTrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<AnalyticsTrace>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceKind {
    Error,
    Estimate,
    StreamStatus,
    Analytics,
    /// A trace type newer than this protocol version; logged and ignored.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    SystemError,
    ConfigError,
    TransientError,
    #[serde(other)]
    Unknown,
}

impl FailureType {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::SystemError => "system_error",
            FailureType::ConfigError => "config_error",
            FailureType::TransientError => "transient_error",
            FailureType::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorTrace {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_descriptor: Option<StreamDescriptor>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EstimateTrace {
    pub name: String,
    /// `STREAM` or `SYNC`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_estimate: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum StreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamStatusTrace {
    pub stream_descriptor: StreamDescriptor,
    pub status: StreamStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnalyticsTrace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControlMessage {
    /// `CONNECTOR_CONFIG` is the only type the protocol defines.
    #[serde(rename = "type")]
    pub kind: String,
    pub emitted_at: f64,
    #[serde(
        rename = "connectorConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connector_config: Option<ControlConnectorConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControlConnectorConfig {
    pub config: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DestinationCatalog {
    pub operations: Vec<DestinationOperation>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DestinationOperation {
    pub object_name: String,
    pub sync_mode: DestinationSyncMode,
    pub json_schema: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matching_keys: Vec<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl StreamDescriptor {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        StreamDescriptor {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
        }
    }
}

/// Whether a stream name as people write it (`name`, or `namespace.name`)
/// names the stream `name` of `namespace`.
pub fn is_stream_named(wanted: &str, namespace: Option<&str>, name: &str) -> bool {
    wanted == name
        || namespace.is_some_and(|ns| {
            wanted
                .strip_prefix(ns)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(name)
        })
}

impl std::fmt::Display for StreamDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let line = br#"{"type":"LOG","log":{"level":"INFO","message":"hi","x_custom":[1,2]},"top_extra":true}"#;
        let m = Message::parse(line).unwrap();
        let wire = WireMessage::from(m.clone());
        assert_eq!(
            wire.extra.len(),
            0,
            "top-level extras live on the wire form"
        );
        let back: Value = serde_json::from_slice(&m.to_line()).unwrap();
        assert_eq!(back["log"]["x_custom"], serde_json::json!([1, 2]));

        let w: WireMessage = serde_json::from_slice(line).unwrap();
        let again: Value = serde_json::to_value(&w).unwrap();
        assert_eq!(again["top_extra"], Value::Bool(true));
    }

    #[test]
    fn every_message_type_parses() {
        let lines: &[&[u8]] = &[
            br#"{"type":"RECORD","record":{"stream":"s","data":{"a":1},"emitted_at":1,"meta":{"changes":[{"field":"a","change":"NULLED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}}}"#,
            br#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":1}},"sourceStats":{"recordCount":1.0}}}"#,
            br#"{"type":"LOG","log":{"level":"WARN","message":"m"}}"#,
            br#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"},"supported_destination_sync_modes":["append","overwrite","append_dedup","update","soft_delete"]}}"#,
            br#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"no"}}"#,
            br#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{},"supported_sync_modes":["full_refresh"]}]}}"#,
            br#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1.5,"error":{"message":"boom","failure_type":"config_error"}}}"#,
            br#"{"type":"TRACE","trace":{"type":"ESTIMATE","emitted_at":1,"estimate":{"name":"s","type":"STREAM","row_estimate":10}}}"#,
            br#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"s"},"status":"COMPLETE"}}}"#,
            br#"{"type":"TRACE","trace":{"type":"ANALYTICS","emitted_at":1,"analytics":{"type":"t","value":"v"}}}"#,
            br#"{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":1,"connectorConfig":{"config":{"token":"new"}}}}"#,
            br#"{"type":"DESTINATION_CATALOG","destination_catalog":{"operations":[{"object_name":"o","sync_mode":"update","json_schema":{},"matching_keys":[["id"]]}]}}"#,
        ];
        let kinds: Vec<&str> = lines
            .iter()
            .map(|l| Message::parse(l).unwrap().kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "RECORD",
                "STATE",
                "LOG",
                "SPEC",
                "CONNECTION_STATUS",
                "CATALOG",
                "TRACE",
                "TRACE",
                "TRACE",
                "TRACE",
                "CONTROL",
                "DESTINATION_CATALOG"
            ]
        );
    }

    #[test]
    fn a_message_without_its_body_is_an_error() {
        let err = Message::parse(br#"{"type":"RECORD"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a RECORD message without its `record` field"
        );
        let err = Message::parse(br#"{"type":"NOPE"}"#).unwrap_err();
        assert_eq!(err.to_string(), "unknown message type `NOPE`");
    }
}
