//! The words every floor shares: kinds and statuses of sources,
//! connections, jobs and attempts, failure origins and types, schedules,
//! schema-change policies and namespace rules. Each has exactly one string
//! form, used in the store, in JSON and YAML, on the command line and in
//! messages; a parser also takes the `-` spelling of a `_` name
//! (`propagate-columns`), so users never meet two spellings that differ.
//!
//! Nothing here does anything: no I/O, no policy. The store keeps these
//! values, the engine and the service decide with them, the Api carries
//! them over the wire.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A string that is not one of a word's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {what}; use {}", .expected.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub expected: Vec<&'static str>,
}

/// An enum of plain words with one string form each.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == wanted)
                    .ok_or_else(|| UnknownValue {
                        what: $what,
                        value: s.to_string(),
                        expected: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, UnknownValue> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        // Its schema is the strings it is written as (the parser's other
        // spellings are for people, not for clients).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                string_schema(None, Some($name::ALL.iter().map(|v| v.as_str())))
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// A string schema, of a pattern or of a list of values.
fn string_schema<'a>(
    pattern: Option<&str>,
    values: Option<impl Iterator<Item = &'a str>>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(pattern)
        .enum_values(values)
        .into()
}

words! {
    /// Sources and destinations are kept alike.
    pub enum ActorKind ("kind of connector setup") {
        Source = "source",
        Destination = "destination",
    }
}

words! {
    /// Whether a connection runs (on its schedule or when asked).
    pub enum ConnectionStatus ("connection status") {
        Active = "active",
        Inactive = "inactive",
    }
}

words! {
    /// What a job does.
    pub enum JobKind ("job kind") {
        /// Reads what is new (or everything, in full refresh) and writes it.
        Sync = "sync",
        /// Clears state and the destination's data.
        Reset = "reset",
        /// Re-syncs everything; the old data stays until the new generation lands.
        Refresh = "refresh",
    }
}

words! {
    /// What started a job.
    pub enum JobTrigger ("job trigger") {
        /// A person or a script, through the CLI or the API.
        Manual = "manual",
        /// The daemon's scheduler, at the connection's schedule.
        Scheduled = "scheduled",
    }
}

words! {
    pub enum JobStatus ("job status") {
        /// Queued, not started.
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

words! {
    pub enum AttemptStatus ("attempt status") {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

words! {
    /// How one sync (an inline sync, or one attempt of a job) ended.
    pub enum SyncStatus ("sync status") {
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl From<SyncStatus> for AttemptStatus {
    fn from(s: SyncStatus) -> AttemptStatus {
        match s {
            SyncStatus::Succeeded => AttemptStatus::Succeeded,
            SyncStatus::Failed => AttemptStatus::Failed,
            SyncStatus::Cancelled => AttemptStatus::Cancelled,
        }
    }
}

impl From<SyncStatus> for JobStatus {
    fn from(s: SyncStatus) -> JobStatus {
        match s {
            SyncStatus::Succeeded => JobStatus::Succeeded,
            SyncStatus::Failed => JobStatus::Failed,
            SyncStatus::Cancelled => JobStatus::Cancelled,
        }
    }
}

words! {
    /// Where a failure came from.
    pub enum FailureOrigin ("failure origin") {
        Source = "source",
        Destination = "destination",
        /// sluice itself: the engine, the store, the machine.
        Platform = "platform",
    }
}

words! {
    /// What kind of failure, as Airbyte's platform names them.
    pub enum FailureType ("failure type") {
        /// The user's to fix: a config, a missing file, a stream that is gone.
        ConfigError = "config_error",
        SystemError = "system_error",
        TransientError = "transient_error",
        ManualCancellation = "manual_cancellation",
        Unknown = "unknown",
    }
}

impl From<crate::protocol::FailureType> for FailureType {
    fn from(t: crate::protocol::FailureType) -> FailureType {
        use crate::protocol::FailureType as P;
        match t {
            P::SystemError => FailureType::SystemError,
            P::ConfigError => FailureType::ConfigError,
            P::TransientError => FailureType::TransientError,
            P::Unknown => FailureType::Unknown,
        }
    }
}

/// Why a sync or an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Failure {
    pub origin: FailureOrigin,
    pub failure_type: FailureType,
    pub message: String,
}

impl Failure {
    pub fn new(
        origin: FailureOrigin,
        failure_type: impl Into<FailureType>,
        message: impl Into<String>,
    ) -> Self {
        Failure {
            origin,
            failure_type: failure_type.into(),
            message: message.into(),
        }
    }
}

/// What a sync moved of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamProgress {
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub records_committed: u64,
    #[serde(default)]
    pub checkpoints: u64,
    /// The source's estimate of the rows it will send, if it gave one.
    #[serde(default)]
    pub estimate: Option<u64>,
    /// The stream's status as the source last reported it (STARTED,
    /// RUNNING, COMPLETE, INCOMPLETE).
    #[serde(default)]
    pub status: Option<String>,
}

impl StreamProgress {
    /// `namespace.name`, or the name alone.
    pub fn descriptor(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One difference between a connection's catalog and what its source has now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaChange {
    pub stream: String,
    pub change: String,
    pub breaking: bool,
}

words! {
    /// How a connection reacts to a changed source schema.
    pub enum SchemaChangePolicy ("schema change policy") {
        /// Keep syncing the catalog as it was.
        Ignore = "ignore",
        /// Take new columns and changed types of the selected streams.
        PropagateColumns = "propagate_columns",
        /// Also add new streams.
        PropagateFully = "propagate_fully",
        /// Disable the connection on any change.
        Disable = "disable",
    }
}

// `words!` derives only what every word has.
#[allow(clippy::derivable_impls)]
impl Default for SchemaChangePolicy {
    fn default() -> Self {
        SchemaChangePolicy::PropagateColumns
    }
}

/// Where a stream lands in the destination.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NamespaceRule {
    /// The source's namespace (the default).
    #[default]
    Source,
    /// No namespace: the destination's default schema or folder.
    Destination,
    /// A fixed namespace; `${SOURCE_NAMESPACE}` in it is replaced.
    Custom(String),
}

impl FromStr for NamespaceRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "source" => Ok(NamespaceRule::Source),
            "destination" => Ok(NamespaceRule::Destination),
            _ => match s.strip_prefix("custom:") {
                Some(name) if !name.is_empty() => Ok(NamespaceRule::Custom(name.to_string())),
                _ => Err(format!(
                    "`{s}` is not a namespace rule: use source, destination or custom:NAME"
                )),
            },
        }
    }
}

/// Written as text: `source`, `destination` or `custom:NAME`.
impl utoipa::PartialSchema for NamespaceRule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            Some("^(source|destination|custom:.+)$"),
            None::<std::iter::Empty<&str>>,
        )
    }
}

impl utoipa::ToSchema for NamespaceRule {}

impl TryFrom<String> for NamespaceRule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<NamespaceRule> for String {
    fn from(r: NamespaceRule) -> String {
        r.to_string()
    }
}

impl fmt::Display for NamespaceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamespaceRule::Source => f.write_str("source"),
            NamespaceRule::Destination => f.write_str("destination"),
            NamespaceRule::Custom(n) => write!(f, "custom:{n}"),
        }
    }
}

/// When a connection runs by itself. Parsed once, where it comes in; the
/// text form is `manual`, `every:DURATION` or `cron:EXPRESSION`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    /// Only when asked.
    #[default]
    Manual,
    /// At a fixed interval of at least a minute.
    Every(Duration),
    /// On a cron expression (5 or 6 fields, as croner reads them), in a
    /// time zone (IANA name; UTC unless the connection names one).
    Cron {
        expression: String,
        timezone: String,
    },
}

/// The shortest interval of an `every:` schedule.
pub const SHORTEST_INTERVAL: Duration = Duration::from_secs(60);

/// Why a text is not a schedule, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    pub message: String,
}

impl ScheduleError {
    pub const HINT: &'static str =
        "use manual, every:DURATION (every:1h, every:30m) or cron:'0 */6 * * *' (cron:'CRON_TZ=Europe/Paris 0 */6 * * *' in a time zone)";
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let err = |message: String| ScheduleError { message };
        let s = s.trim();
        if s == "manual" {
            return Ok(Schedule::Manual);
        }
        if let Some(d) = s.strip_prefix("every:") {
            let d = humantime::parse_duration(d.trim())
                .map_err(|e| err(format!("schedule `{s}`: `{d}` is not a duration: {e}")))?;
            if d < SHORTEST_INTERVAL {
                return Err(err(format!("schedule `{s}` is shorter than a minute")));
            }
            return Ok(Schedule::Every(d));
        }
        if let Some(expr) = s.strip_prefix("cron:") {
            // `CRON_TZ=ZONE EXPR`, as cronie and Kubernetes write a zone.
            let expr = expr.trim();
            let (zone, expr) = match expr.strip_prefix("CRON_TZ=") {
                Some(rest) => rest.split_once(' ').unwrap_or((rest, "")),
                None => ("UTC", expr),
            };
            let expression = expr.trim().to_string();
            expression.parse::<croner::Cron>().map_err(|e| {
                err(match cron_number_out_of_range(&expression) {
                    Some(why) => format!("schedule `{s}`: {why}"),
                    None => format!("schedule `{s}` is not a cron expression: {e}"),
                })
            })?;
            return Schedule::Cron {
                expression,
                timezone: "UTC".into(),
            }
            .in_timezone(zone);
        }
        Err(err(format!("`{s}` is not a schedule")))
    }
}

/// A number of a cron expression outside its field's range, or a range
/// that runs backwards, said as people read it ("hour 25 is out of range
/// 0-23"): croner says only "Number out of bounds" or "Range out of
/// bounds". `None` when every number and range is right (croner's own
/// words then say what is wrong).
fn cron_number_out_of_range(expression: &str) -> Option<String> {
    // As croner reads them: seconds first when there are six or seven
    // fields, a year last when there are seven; 7 is also Sunday.
    const SECOND: (&str, u64, u64) = ("second", 0, 59);
    const FIVE: [(&str, u64, u64); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    const YEAR: (&str, u64, u64) = ("year", 1, 5000);
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let ranges: Vec<(&str, u64, u64)> = match fields.len() {
        5 => FIVE.to_vec(),
        6 => std::iter::once(SECOND).chain(FIVE).collect(),
        7 => std::iter::once(SECOND)
            .chain(FIVE)
            .chain(std::iter::once(YEAR))
            .collect(),
        _ => return None,
    };
    for (field, (name, low, high)) in fields.iter().zip(ranges) {
        for item in field.split(',') {
            // `A-B/STEP`, `N#NTH`, `NL`, `NW`: the field bounds only A, B
            // and N. Names (MON, JAN) and `*` are not numbers.
            let range = item.split(['/', '#']).next().unwrap_or(item);
            let mut numbers = Vec::new();
            for number in range.split('-') {
                let number = number.trim_end_matches(['L', 'W', 'l', 'w']);
                match number.parse::<u64>() {
                    Ok(n) if n < low || n > high => {
                        return Some(format!("{name} {n} is out of range {low}-{high}"));
                    }
                    Ok(n) => numbers.push(n),
                    _ => {}
                }
            }
            // Croner calls a backward range "out of bounds".
            if let [a, b] = numbers[..] {
                if a > b {
                    return Some(format!(
                        "the {name} range {a}-{b} runs backwards: write {b}-{a}, \
                         or {a}-{high},{low}-{b} to wrap around"
                    ));
                }
            }
        }
    }
    None
}

/// Whether cron schedules may fire more than once a minute: only for
/// tests, which cannot wait minutes (`SLUICE_SCHEDULE_SECONDS=allow`, a
/// hidden setting, or [`allow_schedules_in_seconds`] in-process).
fn schedules_in_seconds() -> bool {
    SCHEDULES_IN_SECONDS.load(std::sync::atomic::Ordering::Relaxed)
        || std::env::var("SLUICE_SCHEDULE_SECONDS").is_ok_and(|v| v == "allow")
}

static SCHEDULES_IN_SECONDS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Lets cron schedules in this process fire every second (tests only).
#[doc(hidden)]
pub fn allow_schedules_in_seconds() {
    SCHEDULES_IN_SECONDS.store(true, std::sync::atomic::Ordering::Relaxed);
}

impl Schedule {
    /// Refuses a cron schedule that fires more than once a minute, as
    /// `every:` does: said where a schedule comes in (a stored one is read
    /// whatever it is).
    pub fn check_frequency(&self) -> Result<(), ScheduleError> {
        let Schedule::Cron { expression, .. } = self else {
            return Ok(());
        };
        // Six fields put seconds first: one second of the minute is once
        // a minute.
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() >= 6 && fields[0].parse::<u8>().is_err() && !schedules_in_seconds() {
            return Err(ScheduleError {
                message: format!(
                    "schedule `{self}` fires more than once a minute (its first field, `{}`, \
                     is the second); write five fields, or one second such as `0`",
                    fields[0]
                ),
            });
        }
        Ok(())
    }

    /// The time zone of a cron schedule.
    pub fn timezone(&self) -> Option<&str> {
        match self {
            Schedule::Cron { timezone, .. } => Some(timezone),
            _ => None,
        }
    }

    /// The schedule run in time zone `zone` (an IANA name such as
    /// `Europe/Paris`); only a cron schedule has one.
    pub fn in_timezone(self, zone: &str) -> Result<Schedule, ScheduleError> {
        let zone = zone.trim();
        zone.parse::<chrono_tz::Tz>().map_err(|_| ScheduleError {
            message: format!(
                "`{zone}` is not a time zone; use an IANA name such as UTC or Europe/Paris"
            ),
        })?;
        match self {
            Schedule::Cron { expression, .. } => Ok(Schedule::Cron {
                expression,
                timezone: zone.to_string(),
            }),
            _ if zone == "UTC" => Ok(self),
            other => Err(ScheduleError {
                message: format!(
                    "schedule `{other}` has no time zone; only a cron: schedule runs in one"
                ),
            }),
        }
    }
}

/// Written as text: `manual`, `every:DURATION` or `cron:EXPRESSION`.
impl utoipa::PartialSchema for Schedule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            Some("^(manual|every:.+|cron:.+)$"),
            None::<std::iter::Empty<&str>>,
        )
    }
}

impl utoipa::ToSchema for Schedule {}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;
    fn try_from(s: String) -> Result<Self, ScheduleError> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Manual => f.write_str("manual"),
            Schedule::Every(d) => write!(f, "every:{}", humantime::format_duration(*d)),
            Schedule::Cron {
                expression,
                timezone,
            } if timezone != "UTC" => write!(f, "cron:CRON_TZ={timezone} {expression}"),
            Schedule::Cron { expression, .. } => write!(f, "cron:{expression}"),
        }
    }
}

/// Whether two stream names a user wrote may name the same stream
/// (`users` and `public.users`), for choices kept by name.
pub fn same_stream_name(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cron_schedules_zone_survives_its_text_form() {
        let paris: Schedule = "cron:0 */6 * * *"
            .parse::<Schedule>()
            .unwrap()
            .in_timezone("Europe/Paris")
            .unwrap();
        let text = paris.to_string();
        assert_eq!(text, "cron:CRON_TZ=Europe/Paris 0 */6 * * *");
        assert_eq!(text.parse::<Schedule>().unwrap(), paris);
        let utc: Schedule = "cron:0 */6 * * *".parse().unwrap();
        assert_eq!(utc.to_string(), "cron:0 */6 * * *");
        assert_eq!(utc.timezone(), Some("UTC"));
        let e = "cron:CRON_TZ=Mars/Olympus 0 * * * *"
            .parse::<Schedule>()
            .unwrap_err();
        assert!(e.message.contains("Mars/Olympus"), "{e}");
    }

    #[test]
    fn words_have_one_spelling_and_take_the_dashed_one() {
        assert_eq!(
            "propagate-columns".parse::<SchemaChangePolicy>().unwrap(),
            SchemaChangePolicy::PropagateColumns
        );
        assert_eq!(
            "Propagate_Fully".parse::<SchemaChangePolicy>().unwrap(),
            SchemaChangePolicy::PropagateFully
        );
        assert_eq!(
            SchemaChangePolicy::PropagateColumns.to_string(),
            "propagate_columns"
        );
        let e = "sometimes".parse::<SchemaChangePolicy>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sometimes` is not a schema change policy; use ignore, propagate_columns, propagate_fully, disable"
        );
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), *s);
        }
        assert_eq!(
            serde_json::from_str::<FailureType>("\"manual-cancellation\"").unwrap(),
            FailureType::ManualCancellation
        );
    }

    #[test]
    fn schedules_are_manual_every_or_cron() {
        assert_eq!("manual".parse::<Schedule>().unwrap(), Schedule::Manual);
        assert_eq!(
            "every:1h".parse::<Schedule>().unwrap(),
            Schedule::Every(Duration::from_secs(3600))
        );
        let cron = "cron:0 */6 * * *".parse::<Schedule>().unwrap();
        assert_eq!(
            cron,
            Schedule::Cron {
                expression: "0 */6 * * *".into(),
                timezone: "UTC".into()
            }
        );
        for text in ["manual", "every:1h", "every:30m", "cron:0 */6 * * *"] {
            assert_eq!(text.parse::<Schedule>().unwrap().to_string(), text);
        }
        for bad in [
            "hourly",
            "every:5s",
            "every:soon",
            "cron:61 * * * *",
            "cron:",
            "cron:* * * * * *",
            "cron:*/10 * * * * *",
        ] {
            let refused = bad
                .parse::<Schedule>()
                .and_then(|s| s.check_frequency().map(|()| s));
            assert!(refused.is_err(), "{bad}");
        }
        // One second of the minute is once a minute.
        let once = "cron:30 0 * * * *".parse::<Schedule>().unwrap();
        assert!(once.check_frequency().is_ok());
        assert_eq!(
            serde_json::to_value(Schedule::Every(Duration::from_secs(1800))).unwrap(),
            "every:30m"
        );
    }

    #[test]
    fn a_cron_number_out_of_range_names_its_field_and_the_range() {
        let refused = |text: &str| text.parse::<Schedule>().unwrap_err().message;
        assert_eq!(
            refused("cron:0 25 * * *"),
            "schedule `cron:0 25 * * *`: hour 25 is out of range 0-23"
        );
        for (text, why) in [
            ("cron:61 * * * *", "minute 61 is out of range 0-59"),
            ("cron:0 0 0 * *", "day of month 0 is out of range 1-31"),
            ("cron:0 0 1 13 *", "month 13 is out of range 1-12"),
            ("cron:0 0 * * 1-8", "day of week 8 is out of range 0-7"),
            ("cron:0 0-30/5 * * *", "hour 30 is out of range 0-23"),
            ("cron:0 1,2,24 * * *", "hour 24 is out of range 0-23"),
            ("cron:0 0 32W * *", "day of month 32 is out of range 1-31"),
            ("cron:60 0 * * * *", "second 60 is out of range 0-59"),
            (
                "cron:0 5-3 * * *",
                "the hour range 5-3 runs backwards: write 3-5, or 5-23,0-3 to wrap around",
            ),
            (
                "cron:*/5 0 * * 5-1/2",
                "the day of week range 5-1 runs backwards: write 1-5, or 5-7,0-1 to wrap around",
            ),
            (
                "cron:CRON_TZ=Europe/Paris 0 0 * * 9",
                "day of week 9 is out of range 0-7",
            ),
        ] {
            let message = refused(text);
            assert!(message.ends_with(why), "{text}: {message}");
            assert!(!message.contains("bounds"), "croner's words: {message}");
        }
        // What is in range is croner's to judge, in its words.
        assert!(refused("cron:0 0 * * FOO").contains("is not a cron expression"));
        assert_eq!(cron_number_out_of_range("0 0 L * MON-FRI"), None);
        assert_eq!(cron_number_out_of_range("*/15 * * * 5#2"), None);
    }
}

/// Who is told when a connection's job ends: webhook URLs called with a
/// Slack-compatible JSON body (`text`) and the job's details (`data`).
/// The URLs may hold tokens (Slack's do): what the API shows masks them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Called when a job fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<String>,
    /// Called when a job succeeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<String>,
    /// Called when the connection is disabled after failing too often, and
    /// with a warning before that.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_disable: Vec<String>,
}

impl Notifications {
    pub fn is_empty(&self) -> bool {
        self.on_failure.is_empty() && self.on_success.is_empty() && self.on_disable.is_empty()
    }

    /// Each URL with its path and query (where tokens live) masked:
    /// `https://hooks.slack.com/**********`.
    pub fn masked(&self) -> Notifications {
        let mask = |urls: &[String]| urls.iter().map(|u| mask_url(u)).collect();
        Notifications {
            on_failure: mask(&self.on_failure),
            on_success: mask(&self.on_success),
            on_disable: mask(&self.on_disable),
        }
    }

    /// These URLs with each masked one given back from `stored`, where a
    /// URL masks the same way: a setup that was exported and is applied
    /// again keeps its tokens.
    pub fn unmasked(&self, stored: &Notifications) -> Notifications {
        let unmask = |urls: &[String], old: &[String]| {
            urls.iter()
                .map(|u| {
                    old.iter()
                        .chain(stored.on_failure.iter())
                        .chain(stored.on_success.iter())
                        .chain(stored.on_disable.iter())
                        .find(|o| u.contains(crate::connector::config::MASK) && &mask_url(o) == u)
                        .cloned()
                        .unwrap_or_else(|| u.clone())
                })
                .collect()
        };
        Notifications {
            on_failure: unmask(&self.on_failure, &stored.on_failure),
            on_success: unmask(&self.on_success, &stored.on_success),
            on_disable: unmask(&self.on_disable, &stored.on_disable),
        }
    }

    /// URLs that are not http(s), or still masked (with no stored URL to
    /// stand for): the first, as an error.
    pub fn check(&self) -> Result<(), String> {
        for u in self
            .on_failure
            .iter()
            .chain(&self.on_success)
            .chain(&self.on_disable)
        {
            if u.contains(crate::connector::config::MASK) {
                return Err(format!(
                    "webhook `{u}` is masked, and the connection has no such URL to keep"
                ));
            }
            match reqwest::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => return Err(format!("webhook `{u}` is not an http(s) URL")),
            }
        }
        Ok(())
    }
}

/// A URL with everything after its host masked (nothing to mask: as is).
fn mask_url(u: &str) -> String {
    match reqwest::Url::parse(u) {
        Ok(p) if p.host().is_some() => {
            let origin = p.origin().ascii_serialization();
            if p.path() == "/" && p.query().is_none() && p.username().is_empty() {
                u.to_string()
            } else {
                format!("{origin}/{}", crate::connector::config::MASK)
            }
        }
        _ => crate::connector::config::MASK.to_string(),
    }
}

#[cfg(test)]
mod notification_tests {
    use super::Notifications;

    #[test]
    fn webhook_tokens_are_masked_and_kept_through_a_round_trip() {
        let stored = Notifications {
            on_failure: vec!["https://hooks.slack.com/services/T0/B0/s3cret".into()],
            on_success: vec!["http://127.0.0.1:9000/".into()],
            on_disable: vec![],
        };
        let shown = stored.masked();
        assert_eq!(shown.on_failure, ["https://hooks.slack.com/**********"]);
        assert_eq!(shown.on_success, ["http://127.0.0.1:9000/"]);
        assert_eq!(shown.unmasked(&stored), stored);
        assert!(stored.check().is_ok());
        let mut moved = shown.clone();
        moved.on_disable = shown.on_failure.clone();
        assert_eq!(moved.unmasked(&stored).on_disable, stored.on_failure);
        assert!(shown.unmasked(&Notifications::default()).check().is_err());
        let bad = Notifications {
            on_failure: vec!["ftp://x/y".into()],
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
