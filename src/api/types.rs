//! Every request and answer the Api carries, as they cross a wire: serde
//! types that own their data, with words (statuses, kinds, modes) as enums
//! of one string each. Requests carry values, never a client's paths:
//! configs, catalogs and states are read by the client and sent as JSON.
//!
//! Each also derives its OpenAPI schema (utoipa) from the same serde
//! attributes, so the daemon's document says what crosses the wire.
//!
//! Nothing here runs anything; the service fills these in.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// Sizes as sluice writes them everywhere: `1.5 KiB`.
pub use crate::connector::human_bytes;
pub use crate::connector::registry::{
    Installed as ConnectorInfo, RuntimeOptions, SweepReport, Swept,
};
pub use crate::connector::Role;
pub use crate::model::{
    same_stream_name, ActorKind, AttemptStatus, ConnectionStatus, Failure, FailureOrigin,
    FailureType, JobKind, JobStatus, JobTrigger, NamespaceRule, Notifications, Schedule,
    ScheduleError, SchemaChange, SchemaChangePolicy, StreamProgress, SyncStatus, UnknownValue,
};
pub use crate::protocol::{
    AirbyteCatalog, AirbyteStream, ConfiguredAirbyteCatalog, ConnectionStatus as CheckResult,
    ConnectionStatusKind as CheckStatus, ConnectorSpecification, DestinationSyncMode, LogLevel,
    Message, StateType, SyncMode,
};

/// How a request runs: what it tells runtimes, and what it wants to hear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunOptions {
    /// Options for runtimes (`{"docker": {"memory": "1g"}}`), over the
    /// environment of whoever runs the request.
    #[serde(default, skip_serializing_if = "RuntimeOptions::is_empty")]
    pub runtime: RuntimeOptions,
    /// Send connector and engine log lines back as events, at this level
    /// and more severe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogLevel>,
}

// -- connectors -------------------------------------------------------------

/// One protocol command of a connector: `spec`, `check` or `discover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectorRequest {
    /// `sample`, `python:PACKAGE==VERSION`, `docker:IMAGE:TAG`, `exec:PATH`.
    pub connector: String,
    /// Its config (`{}` when absent).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default)]
    pub options: RunOptions,
}

/// A source's `read`, its raw output streamed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadRequest {
    pub connector: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Every stream in full refresh when absent.
    #[serde(default)]
    pub catalog: Option<ConfiguredAirbyteCatalog>,
    /// A state in Airbyte's `--state` form.
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub options: RunOptions,
}

/// A destination's `write`, fed with a byte stream of protocol lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WriteRequest {
    pub connector: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    pub catalog: ConfiguredAirbyteCatalog,
    #[serde(default)]
    pub options: RunOptions,
}

/// How a connector process ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConnectorExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

// -- inline sync --------------------------------------------------------------

/// One sync from a source to a destination, run to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncRequest {
    pub source: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source_config: Option<Value>,
    pub destination: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub destination_config: Option<Value>,
    /// Stream names (`name` or `namespace.name`); empty means all.
    #[serde(default)]
    pub streams: Vec<String>,
    #[serde(default)]
    pub sync_mode: Option<SyncMode>,
    #[serde(default)]
    pub destination_sync_mode: Option<DestinationSyncMode>,
    /// Cursors chosen by stream name (a field path each), over the
    /// source's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<String, Vec<String>>,
    /// Primary keys chosen by stream name (field paths), over the source's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub primary_keys: BTreeMap<String, Vec<Vec<String>>>,
    /// Sync modes chosen by stream name, over `sync_mode`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sync_modes: BTreeMap<String, SyncMode>,
    /// Destination sync modes chosen by stream name, over
    /// `destination_sync_mode`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub destination_sync_modes: BTreeMap<String, DestinationSyncMode>,
    /// The top-level fields to sync, by stream name; a stream not named
    /// syncs all of its fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selected_fields: BTreeMap<String, Vec<String>>,
    /// A configured catalog to use instead of discovering the source.
    #[serde(default)]
    pub catalog: Option<ConfiguredAirbyteCatalog>,
    /// The state to resume from, in Airbyte's `--state` form. Each state
    /// committed during the sync comes back as an event.
    #[serde(default)]
    pub state: Option<Value>,
    /// Whether the caller keeps what it is told of committed states: a
    /// commit is only announced then (and a full refresh says so).
    #[serde(default)]
    pub keeps_state: bool,
    /// Whether the caller keeps config updates a connector sends (its
    /// configs came from files it can rewrite).
    #[serde(default)]
    pub keeps_configs: ConfigKeepers,
    #[serde(default)]
    pub namespace: NamespaceRule,
    #[serde(default)]
    pub prefix: String,
    /// The longest protocol line accepted, in bytes.
    pub max_line_bytes: u64,
    /// Write the sync's log in the data dir of whoever runs it; false when
    /// the caller keeps its own from `Log` events.
    #[serde(default = "yes")]
    pub keep_log: bool,
    #[serde(default)]
    pub options: RunOptions,
}

fn yes() -> bool {
    true
}

/// Which of a sync's configs the caller keeps (and so can update).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConfigKeepers {
    #[serde(default)]
    pub source: bool,
    #[serde(default)]
    pub destination: bool,
}

/// How a sync went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncAnswer {
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
    /// Whether any state was committed.
    pub state_committed: bool,
    /// The sync's log on the machine that ran it.
    pub log_file: Option<String>,
}

// -- sources and destinations -------------------------------------------------

/// A source or destination as the caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// Its stable id (a UUID): routes take it in place of the name.
    pub id: String,
    pub kind: ActorKind,
    pub name: String,
    pub connector: String,
    /// Secrets masked unless asked for.
    #[schema(value_type = Object)]
    pub config: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a body without `kind` holds until its route's kind replaces it.
fn kind_of_the_route() -> ActorKind {
    ActorKind::Source
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorCreate {
    /// Over HTTP the route's kind is taken: the body may leave it out.
    #[serde(default = "kind_of_the_route")]
    pub kind: ActorKind,
    pub name: String,
    pub connector: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Run the connector's check before saving.
    #[serde(default = "yes")]
    pub check: bool,
    #[serde(default)]
    pub options: RunOptions,
}

/// What changes; what is absent stays. Config fields given as the mask
/// keep their stored secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorUpdate {
    /// Over HTTP the route's kind and name are taken: the body may leave
    /// them out.
    #[serde(default = "kind_of_the_route")]
    pub kind: ActorKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub connector: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default = "yes")]
    pub check: bool,
    #[serde(default)]
    pub options: RunOptions,
}

/// A stored source or destination to run: check it, or discover a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorRun {
    pub kind: ActorKind,
    pub name: String,
    #[serde(default)]
    pub options: RunOptions,
}

// -- connections ----------------------------------------------------------------

/// Everything a connection is, by names: what `create` takes, what `apply`
/// compares and what `export` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    pub source: String,
    pub destination: String,
    /// Stream names; empty means every stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
    #[serde(
        default,
        deserialize_with = "spelled",
        skip_serializing_if = "Option::is_none"
    )]
    pub sync_mode: Option<SyncMode>,
    #[serde(
        default,
        deserialize_with = "spelled",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_sync_mode: Option<DestinationSyncMode>,
    /// Cursors chosen by stream name (a field path each), over the
    /// source's defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursors: BTreeMap<String, Vec<String>>,
    /// Primary keys chosen by stream name (field paths), over the source's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub primary_keys: BTreeMap<String, Vec<Vec<String>>>,
    /// Sync modes chosen by stream name, over `sync_mode`.
    #[serde(
        default,
        deserialize_with = "spelled_each",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sync_modes: BTreeMap<String, SyncMode>,
    /// Destination sync modes chosen by stream name, over
    /// `destination_sync_mode`.
    #[serde(
        default,
        deserialize_with = "spelled_each",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub destination_sync_modes: BTreeMap<String, DestinationSyncMode>,
    /// The top-level fields to sync, by stream name; a stream not named
    /// syncs all of its fields. The cursor and primary key must be among
    /// them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selected_fields: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub namespace: NamespaceRule,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default = "active")]
    pub status: ConnectionStatus,
    #[serde(default)]
    pub schema_change: SchemaChangePolicy,
    /// Webhooks called when its jobs end (shown masked).
    #[serde(default, skip_serializing_if = "Notifications::is_empty")]
    pub notifications: Notifications,
}

/// A mode as people write it in a setup file: `full_refresh` or
/// `full-refresh`.
fn spelled<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    Option::<String>::deserialize(d)?
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// Modes by stream name, each as people write it in a setup file.
fn spelled_each<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| v.parse().map(|m| (k, m)).map_err(serde::de::Error::custom))
        .collect()
}

fn active() -> ConnectionStatus {
    ConnectionStatus::Active
}

impl ConnectionSpec {
    pub fn new(source: &str, destination: &str) -> Self {
        ConnectionSpec {
            source: source.into(),
            destination: destination.into(),
            streams: Vec::new(),
            sync_mode: None,
            destination_sync_mode: None,
            cursors: BTreeMap::new(),
            primary_keys: BTreeMap::new(),
            sync_modes: BTreeMap::new(),
            destination_sync_modes: BTreeMap::new(),
            selected_fields: BTreeMap::new(),
            schedule: Schedule::Manual,
            namespace: NamespaceRule::Source,
            prefix: String::new(),
            status: ConnectionStatus::Active,
            schema_change: SchemaChangePolicy::default(),
            notifications: Notifications::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionCreate {
    pub name: String,
    pub spec: ConnectionSpec,
    #[serde(default)]
    pub options: RunOptions,
}

/// What a connection update changes; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionPatch {
    pub source: Option<String>,
    pub destination: Option<String>,
    /// An empty list means every stream.
    pub streams: Option<Vec<String>>,
    pub sync_mode: Option<SyncMode>,
    pub destination_sync_mode: Option<DestinationSyncMode>,
    /// Replaces the chosen cursors.
    pub cursors: Option<BTreeMap<String, Vec<String>>>,
    /// Replaces the chosen primary keys.
    pub primary_keys: Option<BTreeMap<String, Vec<Vec<String>>>>,
    /// Replaces the sync modes chosen per stream.
    pub sync_modes: Option<BTreeMap<String, SyncMode>>,
    /// Replaces the destination sync modes chosen per stream.
    pub destination_sync_modes: Option<BTreeMap<String, DestinationSyncMode>>,
    /// Replaces the fields chosen per stream.
    pub selected_fields: Option<BTreeMap<String, Vec<String>>>,
    pub schedule: Option<Schedule>,
    pub namespace: Option<NamespaceRule>,
    pub prefix: Option<String>,
    pub schema_change: Option<SchemaChangePolicy>,
    /// Replaces the webhooks; a masked URL keeps the stored one it masks.
    pub notifications: Option<Notifications>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionUpdate {
    pub name: String,
    pub patch: ConnectionPatch,
    #[serde(default)]
    pub options: RunOptions,
}

/// A connection as the caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    /// Its stable id (a UUID): routes take it in place of the name.
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    #[schema(schema_with = open_spec)]
    pub spec: ConnectionSpec,
    /// The streams of its catalog, with their modes.
    pub catalog_streams: Vec<CatalogStream>,
    pub last_job: Option<LastJob>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The configured catalog, in full (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<ConfiguredAirbyteCatalog>,
}

/// A connection spec's schema open to more fields: a [`Connection`] has
/// its spec's fields among its own, which a spec alone refuses.
fn open_spec() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{schema::Schema, RefOr};
    let mut schema = <ConnectionSpec as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.additional_properties = None;
    }
    schema
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatalogStream {
    pub name: String,
    pub sync_mode: SyncMode,
    pub destination_sync_mode: DestinationSyncMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LastJob {
    pub id: i64,
    pub status: JobStatus,
    /// When it ended, or started, or was created (Unix ms).
    pub at: i64,
    /// Records its attempts read.
    #[serde(default)]
    pub records: i64,
}

// -- jobs ---------------------------------------------------------------------

/// When a job gives up, and how long it waits between attempts (Airbyte's
/// rules: attempts that committed nothing count towards a small limit and
/// wait longer each time; one that committed progress resets that count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryPolicy {
    /// Attempts in a row that committed nothing, before giving up.
    pub max_failed_in_a_row: u32,
    /// Attempts in all, before giving up.
    pub max_attempts: u32,
    /// The wait after the first attempt that committed nothing; tripled
    /// after each further one.
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub backoff: Duration,
    #[serde(with = "millis")]
    #[schema(value_type = u64)]
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_failed_in_a_row: 5,
            max_attempts: 20,
            backoff: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(30 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, after `failed_in_a_row` attempts
    /// that committed nothing (none after one that committed progress).
    pub fn delay(&self, failed_in_a_row: u32) -> Duration {
        if failed_in_a_row == 0 {
            return Duration::ZERO;
        }
        let factor = 3u32.saturating_pow(failed_in_a_row - 1);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

fn manual() -> JobTrigger {
    JobTrigger::Manual
}

fn sync_job() -> JobKind {
    JobKind::Sync
}

/// A sync, reset or refresh of a connection, run now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRequest {
    /// Its name or id; over HTTP the path's, so a body may leave it out.
    #[serde(default)]
    pub connection: String,
    /// A sync unless said.
    #[serde(default = "sync_job")]
    pub kind: JobKind,
    /// For a reset: only these streams (all when empty).
    #[serde(default)]
    pub streams: Vec<String>,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub options: RunOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    /// Its stable id (a UUID): routes take it in place of the number.
    pub uuid: String,
    pub connection_id: i64,
    pub connection: String,
    pub kind: JobKind,
    /// What started it: `manual` or `scheduled`.
    #[serde(default = "manual")]
    pub trigger: JobTrigger,
    pub status: JobStatus,
    /// Who runs or ran it: `pid 123 on host`.
    pub owner: Option<String>,
    /// The schema changes found before it ran.
    pub changes: Vec<SchemaChange>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub job_id: i64,
    pub number: i64,
    pub status: AttemptStatus,
    pub stats: Vec<StreamProgress>,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
    pub failure: Option<Failure>,
    /// The attempt's log on the machine that ran it.
    pub log_path: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// A job as a caller names it: by its number or by its stable id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    Number(i64),
    /// In its lowercase hyphenated form, whatever form it was given in.
    Uuid(String),
}

impl From<i64> for JobRef {
    fn from(n: i64) -> Self {
        JobRef::Number(n)
    }
}

impl std::str::FromStr for JobRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = s.parse() {
            return Ok(JobRef::Number(n));
        }
        uuid::Uuid::try_parse(s)
            .map(|u| JobRef::Uuid(u.to_string()))
            .map_err(|_| format!("`{s}` is not a job id: give its number or its UUID"))
    }
}

impl std::fmt::Display for JobRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobRef::Number(n) => write!(f, "{n}"),
            JobRef::Uuid(u) => f.write_str(u),
        }
    }
}

/// A job with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: Job,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobFilter {
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(default)]
    pub status: Option<JobStatus>,
    /// At most this many, newest first; 0 for all.
    #[serde(default)]
    pub limit: i64,
}

/// The log of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLog {
    pub job: i64,
    pub attempt: i64,
    pub log: String,
}

// -- state --------------------------------------------------------------------

/// A connection's committed state, in Airbyte's `--state` file form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectionState {
    pub state_type: StateType,
    pub state: Value,
    pub updated_at: i64,
}

// -- apply and export -----------------------------------------------------------

/// A source or destination in a setup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorDef {
    pub connector: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Everything sluice runs, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub sources: BTreeMap<String, ActorDef>,
    #[serde(default)]
    pub destinations: BTreeMap<String, ActorDef>,
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplyRequest {
    pub setup: Setup,
    /// Also delete what the setup no longer names.
    #[serde(default)]
    pub prune: bool,
    /// Only say what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Run connectors' checks on what is created or updated.
    #[serde(default)]
    pub check: bool,
    #[serde(default)]
    pub options: RunOptions,
}

/// What `apply` does to one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    Delete,
    Unchanged,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Delete => "delete",
            ChangeAction::Unchanged => "unchanged",
        }
    }
}

/// What `apply` changes of a setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetupKind {
    Source,
    Destination,
    Connection,
}

impl SetupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SetupKind::Source => "source",
            SetupKind::Destination => "destination",
            SetupKind::Connection => "connection",
        }
    }
}

impl From<ActorKind> for SetupKind {
    fn from(k: ActorKind) -> SetupKind {
        match k {
            ActorKind::Source => SetupKind::Source,
            ActorKind::Destination => SetupKind::Destination,
        }
    }
}

/// One change `apply` makes (or would make).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedChange {
    pub kind: SetupKind,
    pub name: String,
    pub action: ChangeAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplyPlan {
    pub changes: Vec<PlannedChange>,
    pub applied: bool,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

// -- the store ----------------------------------------------------------------

/// What `db status` and `db migrate` say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DbStatus {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The store's URL, its password masked.
    pub url: String,
    pub applied: Vec<Migration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Migration {
    pub version: i64,
    pub description: String,
    pub installed_on: String,
}

// -- the daemon -----------------------------------------------------------------

/// What `sluice daemon status` says of a running daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DaemonStatus {
    pub version: String,
    pub pid: u32,
    /// Unix milliseconds.
    pub started_at: i64,
    pub uptime_s: u64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The store's URL, its password masked.
    pub store: String,
    /// `unix:///path/daemon.sock`, `http://127.0.0.1:8080`.
    pub listen: Vec<String>,
    pub jobs_running: usize,
    pub jobs_queued: usize,
    /// Whether this daemon's scheduler fires the schedules: on a shared
    /// PostgreSQL store one daemon's does, and another takes over when it
    /// stops.
    #[serde(default)]
    pub scheduler_leads: bool,
    /// The next scheduled runs, soonest first.
    #[serde(default)]
    pub next_runs: Vec<NextRun>,
}

/// When a connection's schedule fires next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NextRun {
    pub connection: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What a daemon answers at `/healthz`: alive, and which sluice it is.
/// Answered without the token on TCP: nothing more goes here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// What a daemon answers at `/readyz` when its store answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
}

// -- events -------------------------------------------------------------------

/// What a long operation says while it runs, in order; the answer comes
/// after the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// What it is doing now: an install step, an image pull, a discover.
    Step { message: String },
    /// Records and bytes per stream so far.
    Progress {
        streams: Vec<StreamProgress>,
        elapsed_ms: u64,
    },
    /// A log line of a connector or of sluice, secrets redacted (only when
    /// the request asked for logs).
    Log {
        /// RFC 3339, to the millisecond.
        at: String,
        origin: String,
        level: LogLevel,
        message: String,
    },
    /// Something people should see: a retry, a warning.
    Notice { level: LogLevel, message: String },
    /// A state the destination confirmed, in Airbyte's `--state` form: the
    /// whole state to resume from now.
    StateCommitted { state: Value },
    /// A connector sent an updated config (CONTROL message), merged and
    /// validated: the whole config to keep from now.
    ConfigUpdated {
        role: Role,
        #[schema(value_type = Object)]
        config: Value,
    },
    /// A job was created for this run.
    JobStarted { job: i64 },
}

impl Event {
    /// A log line as sluice writes its log files.
    pub fn log_line(at: &str, origin: &str, level: LogLevel, message: &str) -> String {
        crate::sync::log::format_line(at, origin, level, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
        let json = serde_json::to_string(&value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap_or_else(|e| {
            panic!(
                "{} does not read back: {e}\n{json}",
                std::any::type_name::<T>()
            )
        });
        assert_eq!(back, value, "{json}");
    }

    fn catalog() -> ConfiguredAirbyteCatalog {
        serde_json::from_value(json!({"streams": [{
            "stream": {"name": "users", "json_schema": {"type": "object"},
                       "supported_sync_modes": ["full_refresh", "incremental"]},
            "sync_mode": "incremental", "cursor_field": ["updated_at"],
            "destination_sync_mode": "append_dedup", "primary_key": [["id"]]
        }]}))
        .unwrap()
    }

    fn options() -> RunOptions {
        let mut runtime = RuntimeOptions::default();
        runtime.set("docker", "memory", "1g");
        RunOptions {
            runtime,
            logs: Some(LogLevel::Debug),
        }
    }

    fn failure() -> Failure {
        Failure::new(
            FailureOrigin::Source,
            FailureType::ConfigError,
            "bad password",
        )
    }

    fn progress() -> StreamProgress {
        StreamProgress {
            namespace: Some("public".into()),
            name: "users".into(),
            records: 10,
            bytes: 1000,
            records_committed: 8,
            checkpoints: 2,
            estimate: Some(100),
            status: Some("RUNNING".into()),
        }
    }

    fn spec() -> ConnectionSpec {
        ConnectionSpec {
            streams: vec!["users".into()],
            sync_mode: Some(SyncMode::Incremental),
            destination_sync_mode: Some(DestinationSyncMode::AppendDedup),
            cursors: BTreeMap::from([("users".into(), vec!["updated_at".into()])]),
            primary_keys: BTreeMap::from([("users".into(), vec![vec!["id".into()]])]),
            schedule: "cron:0 */6 * * *".parse().unwrap(),
            namespace: NamespaceRule::Custom("raw_${SOURCE_NAMESPACE}".into()),
            prefix: "p_".into(),
            status: ConnectionStatus::Inactive,
            schema_change: SchemaChangePolicy::PropagateFully,
            notifications: Notifications {
                on_failure: vec!["https://hooks.slack.com/**********".into()],
                ..Default::default()
            },
            ..ConnectionSpec::new("faker", "local")
        }
    }

    fn job() -> Job {
        Job {
            id: 7,
            uuid: "5f0c3c9e-2d6a-4d57-9a0e-3b1f8c2e7d41".into(),
            connection_id: 1,
            connection: "c".into(),
            kind: JobKind::Refresh,
            trigger: JobTrigger::Scheduled,
            status: JobStatus::Failed,
            owner: Some("pid 1 on h".into()),
            changes: vec![SchemaChange {
                stream: "users".into(),
                change: "column `x` added".into(),
                breaking: false,
            }],
            created_at: 1,
            started_at: Some(2),
            ended_at: None,
        }
    }

    #[test]
    fn every_request_and_answer_round_trips_through_json() {
        round_trip(options());
        round_trip(ConnectorRequest {
            connector: "sample".into(),
            config: Some(json!({"count": 3})),
            options: options(),
        });
        round_trip(ReadRequest {
            connector: "sample".into(),
            config: None,
            catalog: Some(catalog()),
            state: Some(json!([{"type": "LEGACY", "data": {}}])),
            options: options(),
        });
        round_trip(WriteRequest {
            connector: "jsonl".into(),
            config: Some(json!({"path": "/out"})),
            catalog: catalog(),
            options: RunOptions::default(),
        });
        round_trip(ConnectorExit {
            code: Some(1),
            signal: None,
        });
        round_trip(SyncRequest {
            source: "sample".into(),
            source_config: Some(json!({"count": 1})),
            destination: "devnull".into(),
            destination_config: None,
            streams: vec!["users".into()],
            sync_mode: Some(SyncMode::FullRefresh),
            destination_sync_mode: Some(DestinationSyncMode::Overwrite),
            cursors: BTreeMap::from([("users".into(), vec!["at".into()])]),
            primary_keys: BTreeMap::new(),
            sync_modes: BTreeMap::from([("users".into(), SyncMode::Incremental)]),
            destination_sync_modes: BTreeMap::from([(
                "users".into(),
                DestinationSyncMode::AppendDedup,
            )]),
            selected_fields: BTreeMap::from([("users".into(), vec!["id".into(), "at".into()])]),
            catalog: Some(catalog()),
            state: Some(json!({"cursor": 1})),
            keeps_state: true,
            keeps_configs: ConfigKeepers {
                source: true,
                destination: false,
            },
            namespace: NamespaceRule::Destination,
            prefix: "x_".into(),
            max_line_bytes: 1 << 20,
            keep_log: false,
            options: options(),
        });
        round_trip(SyncAnswer {
            status: SyncStatus::Failed,
            failure: Some(failure()),
            streams: vec![progress()],
            records: 10,
            bytes: 1000,
            records_committed: 8,
            duration_ms: 5,
            lines_skipped: 1,
            records_dropped: 0,
            state_committed: true,
            log_file: Some("/data/logs/sync.log".into()),
        });
        let actor = Actor {
            id: "0b6e1f6a-8f4e-4a53-bb8e-7c9d2a1e5f30".into(),
            kind: ActorKind::Destination,
            name: "local".into(),
            connector: "jsonl".into(),
            config: json!({"path": "/out"}),
            created_at: 1,
            updated_at: 2,
        };
        round_trip(actor);
        round_trip(ActorCreate {
            kind: ActorKind::Source,
            name: "faker".into(),
            connector: "python:airbyte-source-faker==7.2.1".into(),
            config: Some(json!({"count": 1})),
            check: false,
            options: options(),
        });
        round_trip(ActorUpdate {
            kind: ActorKind::Source,
            name: "faker".into(),
            connector: None,
            config: Some(json!({"count": 2})),
            check: true,
            options: RunOptions::default(),
        });
        round_trip(ActorRun {
            kind: ActorKind::Destination,
            name: "local".into(),
            options: options(),
        });
        round_trip(spec());
        round_trip(ConnectionCreate {
            name: "c".into(),
            spec: spec(),
            options: options(),
        });
        round_trip(ConnectionUpdate {
            name: "c".into(),
            patch: ConnectionPatch {
                streams: Some(Vec::new()),
                schedule: Some("every:2h".parse().unwrap()),
                schema_change: Some(SchemaChangePolicy::Disable),
                ..Default::default()
            },
            options: RunOptions::default(),
        });
        round_trip(Connection {
            id: "9d2f4b1c-3e5a-4c7b-8d9e-1f2a3b4c5d6e".into(),
            name: "c".into(),
            spec: spec(),
            catalog_streams: vec![CatalogStream {
                name: "users".into(),
                sync_mode: SyncMode::Incremental,
                destination_sync_mode: DestinationSyncMode::AppendDedup,
            }],
            last_job: Some(LastJob {
                id: 7,
                status: JobStatus::Running,
                at: 3,
                records: 10,
            }),
            created_at: 1,
            updated_at: 2,
            catalog: Some(catalog()),
        });
        round_trip(JobRequest {
            connection: "c".into(),
            kind: JobKind::Reset,
            streams: vec!["users".into()],
            retry: RetryPolicy::default(),
            options: options(),
        });
        round_trip(JobDetail {
            job: job(),
            attempts: vec![Attempt {
                job_id: 7,
                number: 1,
                status: AttemptStatus::Failed,
                stats: vec![progress()],
                records: 10,
                bytes: 1000,
                records_committed: 8,
                failure: Some(failure()),
                log_path: Some("/data/jobs/7/attempt-1.log".into()),
                started_at: 2,
                ended_at: Some(3),
            }],
        });
        round_trip(job());
        round_trip(JobFilter {
            connection: Some("c".into()),
            status: Some(JobStatus::Succeeded),
            limit: 5,
        });
        round_trip(JobLog {
            job: 7,
            attempt: 1,
            log: "line\n".into(),
        });
        round_trip(ConnectionState {
            state_type: StateType::Stream,
            state: json!([{"type": "STREAM"}]),
            updated_at: 4,
        });
        let mut setup = Setup::default();
        setup.sources.insert(
            "faker".into(),
            ActorDef {
                connector: "sample".into(),
                config: json!({"count": 1}),
            },
        );
        setup.connections.insert("c".into(), spec());
        round_trip(ApplyRequest {
            setup,
            prune: true,
            dry_run: true,
            check: false,
            options: options(),
        });
        round_trip(ApplyPlan {
            changes: vec![PlannedChange {
                kind: SetupKind::Connection,
                name: "c".into(),
                action: ChangeAction::Update,
            }],
            applied: false,
            warnings: vec!["w".into()],
        });
        round_trip(DbStatus {
            backend: "sqlite".into(),
            url: "/data/sluice.db".into(),
            applied: vec![Migration {
                version: 1,
                description: "initial".into(),
                installed_on: "2026-01-01".into(),
            }],
        });
        round_trip(ConnectorInfo {
            reference: "python:airbyte-source-faker==7.2.1".into(),
            runtime: "python".into(),
            kind: "source".into(),
            version: "7.2.1".into(),
            description: "d".into(),
            location: Some("/c/python/x".into()),
        });
        round_trip(SweepReport {
            removed: vec![Swept {
                id: "abc".into(),
                name: "n".into(),
                image: "i".into(),
                state: "exited".into(),
                job: Some("1".into()),
                attempt: None,
                role: Some("source".into()),
                pid: Some(1),
                reason: "gone".into(),
            }],
            kept: Vec::new(),
        });
        for event in [
            Event::Step {
                message: "Installing".into(),
            },
            Event::Progress {
                streams: vec![progress()],
                elapsed_ms: 200,
            },
            Event::Log {
                at: "2026-12-01T00:00:00.000Z".into(),
                origin: "source".into(),
                level: LogLevel::Warn,
                message: "m".into(),
            },
            Event::Notice {
                level: LogLevel::Error,
                message: "retrying".into(),
            },
            Event::StateCommitted {
                state: json!([{"type": "STREAM"}]),
            },
            Event::ConfigUpdated {
                role: Role::Destination,
                config: json!({"token": "new"}),
            },
            Event::JobStarted { job: 7 },
        ] {
            round_trip(event);
        }
    }
}
