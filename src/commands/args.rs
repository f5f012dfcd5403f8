//! Arguments several commands share: the global options, how output is
//! printed, the Docker runtime's flags and the sync modes.

use crate::api::{
    same_stream_name, ApiError, ConnectionPatch, ConnectionSpec, DestinationSyncMode, RunOptions,
    RuntimeOptions, SyncMode,
};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

const GLOBAL: &str = "Global options";

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// How to print results: tables for people, JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table, help_heading = GLOBAL)]
    pub output: OutputFormat,

    /// Print no progress and no informational messages.
    #[arg(long, short = 'q', global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// Show connector logs as they come (-vv for debug lines too).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Where sluice keeps logs and installed connectors
    /// [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice].
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    pub data_dir: Option<PathBuf>,

    /// The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL
    /// [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir].
    #[arg(long, global = true, value_name = "URL", help_heading = GLOBAL)]
    pub database_url: Option<String>,

    /// The daemon to talk to: unix:///path/daemon.sock or http(s)://HOST:PORT
    /// [env: SLUICE_HOST] [default: the data dir's daemon when one answers,
    /// else this process].
    #[arg(long, global = true, value_name = "ADDRESS", help_heading = GLOBAL)]
    pub host: Option<String>,

    /// The daemon's token, for a daemon on TCP [env: SLUICE_TOKEN].
    #[arg(long, global = true, value_name = "TOKEN", help_heading = GLOBAL)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// How runtimes run connectors, on every command that runs them: the
/// Docker runtime's flags, and any runtime's options by name.
#[derive(Debug, Clone, Default, Args)]
pub struct RuntimeArgs {
    /// An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g.
    /// docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*].
    #[arg(
        long = "runtime-option",
        value_name = "RUNTIME.NAME=VALUE",
        value_parser = runtime_option,
        help_heading = "Runtimes"
    )]
    pub options: Vec<(String, String, String)>,

    /// When to pull a Docker connector's image
    /// [env: SLUICE_DOCKER_PULL] [default: missing].
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        help_heading = "Docker connectors"
    )]
    pub pull: Option<PullArg>,

    /// The memory limit of each connector container, e.g. 512m or 2g
    /// [env: SLUICE_DOCKER_MEMORY] [default: 2g].
    #[arg(long, value_name = "SIZE", help_heading = "Docker connectors")]
    pub memory: Option<String>,

    /// The CPUs each connector container may use, e.g. 0.5
    /// [env: SLUICE_DOCKER_CPUS] [default: 2].
    #[arg(long, value_name = "CPUS", help_heading = "Docker connectors")]
    pub cpus: Option<String>,

    /// The Docker network connector containers join: host (the machine's
    /// network, as Airbyte runs them), bridge (the engine's own, isolated),
    /// or a network's name, to reach a database in another container
    /// [env: SLUICE_DOCKER_NETWORK] [default: host].
    #[arg(long, value_name = "NAME", help_heading = "Docker connectors")]
    pub network: Option<String>,

    /// A host directory mounted at /local in connector containers, where
    /// file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT].
    #[arg(long, value_name = "DIR", help_heading = "Docker connectors")]
    pub local_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullArg {
    /// Before the first use in each run.
    Always,
    /// When the engine does not have the image.
    Missing,
    /// Never; a missing image is an error.
    Never,
}

impl RuntimeArgs {
    /// The runtime options these flags give; the named flags win over
    /// `--runtime-option`. A relative `--local-root` is made absolute
    /// here, where it was written.
    pub fn runtime(&self) -> anyhow::Result<RuntimeOptions> {
        let mut o = RuntimeOptions::default();
        for (runtime, name, value) in &self.options {
            o.set(runtime, name, value.clone());
        }
        let mut set = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                o.set("docker", name, v);
            }
        };
        set("pull", self.pull.map(|p| possible_value(&p)));
        set("memory", self.memory.clone());
        set("cpus", self.cpus.clone());
        set("network", self.network.clone());
        let local_root = match &self.local_root {
            Some(dir) => Some(
                std::path::absolute(dir)
                    .map_err(|e| anyhow::anyhow!("--local-root {}: {e}", dir.display()))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            None => None,
        };
        set("local_root", local_root);
        Ok(o)
    }
}

/// Cursors, primary keys, modes and fields chosen per stream, over the
/// source's and the whole sync's. `connection update` changes only the
/// streams named, and `STREAM=` there puts a stream back to the default.
#[derive(Debug, Clone, Default, Args)]
pub struct StreamChoices {
    /// The cursor of a stream for incremental syncs, as STREAM=FIELD
    /// (a nested field as a.b; repeatable), over the source's default.
    #[arg(long = "cursor", value_name = "STREAM=FIELD", value_parser = stream_cursor)]
    pub cursors: Vec<(String, Option<Vec<String>>)>,

    /// The primary key of a stream, as STREAM=FIELD[,FIELD...]
    /// (repeatable), over the source's; append_dedup needs one.
    #[arg(long = "primary-key", value_name = "STREAM=FIELDS", value_parser = stream_key)]
    pub primary_keys: Vec<(String, Option<Vec<Vec<String>>>)>,

    /// The sync mode of one stream, as STREAM=MODE (full_refresh or
    /// incremental; repeatable), over --sync-mode.
    #[arg(long = "stream-sync-mode", value_name = "STREAM=MODE", value_parser = stream_mode::<SyncMode>)]
    pub sync_modes: Vec<(String, Option<SyncMode>)>,

    /// The destination sync mode of one stream, as STREAM=MODE (overwrite,
    /// append or append_dedup; repeatable), over --destination-sync-mode.
    #[arg(long = "stream-destination-sync-mode", value_name = "STREAM=MODE", value_parser = stream_mode::<DestinationSyncMode>)]
    pub destination_sync_modes: Vec<(String, Option<DestinationSyncMode>)>,

    /// Only these top-level fields of a stream, as STREAM=FIELD[,FIELD...]
    /// (repeatable); the cursor and a deduplication key must be among
    /// them. A stream not named keeps all of its fields.
    #[arg(long = "fields", value_name = "STREAM=FIELDS", value_parser = stream_fields)]
    pub selected_fields: Vec<(String, Option<Vec<String>>)>,
}

/// One kind of per-stream choice as given: a value per stream, or none
/// (`STREAM=`) to put that stream back to the default. (The fields above
/// spell the type out: clap reads it to know they repeat.)
pub type Given<T> = Vec<(String, Option<T>)>;

impl StreamChoices {
    /// The choices of a new connection or an inline sync.
    pub fn maps(&self) -> Result<ChoiceMaps, ApiError> {
        Ok(ChoiceMaps {
            cursors: chosen("cursor", &self.cursors)?,
            primary_keys: chosen("primary-key", &self.primary_keys)?,
            sync_modes: chosen("stream-sync-mode", &self.sync_modes)?,
            destination_sync_modes: chosen(
                "stream-destination-sync-mode",
                &self.destination_sync_modes,
            )?,
            selected_fields: chosen("fields", &self.selected_fields)?,
        })
    }

    /// Whether any was given (an update then starts from the stored ones).
    pub fn given(&self) -> bool {
        !(self.cursors.is_empty()
            && self.primary_keys.is_empty()
            && self.sync_modes.is_empty()
            && self.destination_sync_modes.is_empty()
            && self.selected_fields.is_empty())
    }

    /// An update: each stream named gets its new choice (or loses it, for
    /// `STREAM=`), over the connection's `current` ones; the other
    /// streams' choices stay.
    pub fn patch(&self, p: &mut ConnectionPatch, current: &ConnectionSpec) -> Result<(), ApiError> {
        p.cursors = merged("cursor", &self.cursors, &current.cursors)?;
        p.primary_keys = merged("primary-key", &self.primary_keys, &current.primary_keys)?;
        p.sync_modes = merged("stream-sync-mode", &self.sync_modes, &current.sync_modes)?;
        p.destination_sync_modes = merged(
            "stream-destination-sync-mode",
            &self.destination_sync_modes,
            &current.destination_sync_modes,
        )?;
        p.selected_fields = merged("fields", &self.selected_fields, &current.selected_fields)?;
        Ok(())
    }
}

/// The per-stream choices as a connection's spec and a sync request hold
/// them: a map by stream name each.
pub struct ChoiceMaps {
    pub cursors: BTreeMap<String, Vec<String>>,
    pub primary_keys: BTreeMap<String, Key>,
    pub sync_modes: BTreeMap<String, SyncMode>,
    pub destination_sync_modes: BTreeMap<String, DestinationSyncMode>,
    pub selected_fields: BTreeMap<String, Vec<String>>,
}

fn twice(flag: &str, stream: &str) -> ApiError {
    ApiError::user(format!("--{flag} names stream `{stream}` twice"))
        .hint("give each stream one value")
}

fn chosen<T: Clone>(flag: &str, given: &Given<T>) -> Result<BTreeMap<String, T>, ApiError> {
    let mut map = BTreeMap::new();
    for (stream, value) in given {
        let Some(value) = value else {
            return Err(ApiError::user(format!(
                "--{flag} {stream}= names no value: only `connection update` takes it, to put a stream back to the default"
            )));
        };
        if map.insert(stream.clone(), value.clone()).is_some() {
            return Err(twice(flag, stream));
        }
    }
    Ok(map)
}

fn merged<T: Clone>(
    flag: &str,
    given: &Given<T>,
    current: &BTreeMap<String, T>,
) -> Result<Option<BTreeMap<String, T>>, ApiError> {
    if given.is_empty() {
        return Ok(None);
    }
    let mut map = current.clone();
    for (i, (stream, value)) in given.iter().enumerate() {
        if given[..i].iter().any(|(s, _)| same_stream_name(s, stream)) {
            return Err(twice(flag, stream));
        }
        map.retain(|k, _| !same_stream_name(k, stream));
        if let Some(v) = value {
            map.insert(stream.clone(), v.clone());
        }
    }
    Ok(Some(map))
}

/// `STREAM=VALUE`, or `STREAM=` for none.
fn stream_or_none(text: &str, what: &str) -> Result<(String, Option<String>), String> {
    match text.split_once('=') {
        Some((stream, rest)) if !stream.trim().is_empty() => {
            let rest = rest.trim();
            Ok((
                stream.trim().to_string(),
                (!rest.is_empty()).then(|| rest.to_string()),
            ))
        }
        _ => Err(format!("`{text}` is not STREAM={what}")),
    }
}

/// A field path: `updated_at`, `meta.updated_at`.
fn path(field: &str) -> Vec<String> {
    field.split('.').map(str::to_string).collect()
}

fn stream_cursor(text: &str) -> Result<(String, Option<Vec<String>>), String> {
    let (stream, field) = stream_or_none(text, "FIELD")?;
    Ok((stream, field.as_deref().map(path)))
}

/// A primary key: field paths.
type Key = Vec<Vec<String>>;

fn stream_key(text: &str) -> Result<(String, Option<Key>), String> {
    let (stream, fields) = stream_or_none(text, "FIELD[,FIELD...]")?;
    Ok((
        stream,
        fields.map(|f| f.split(',').map(|f| path(f.trim())).collect()),
    ))
}

fn stream_mode<T>(text: &str) -> Result<(String, Option<T>), String>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let (stream, mode) = stream_or_none(text, "MODE")?;
    let mode = mode
        .map(|m| m.parse().map_err(|e| format!("`{text}`: {e}")))
        .transpose()?;
    Ok((stream, mode))
}

fn stream_fields(text: &str) -> Result<(String, Option<Vec<String>>), String> {
    let (stream, fields) = stream_or_none(text, "FIELD[,FIELD...]")?;
    Ok((
        stream,
        fields.map(|f| f.split(',').map(|f| f.trim().to_string()).collect()),
    ))
}

/// Stream names as given to `--streams a,b`: trimmed; a list that names
/// none (`--streams ''`) is an error, not "all streams".
pub fn stream_names(given: &[String]) -> Result<Vec<String>, crate::api::ApiError> {
    let names: Vec<String> = given
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !given.is_empty() && names.is_empty() {
        return Err(
            crate::api::ApiError::user("--streams names no stream").hint(
                "name streams (--streams users,orders), or leave --streams out for all of them",
            ),
        );
    }
    Ok(names)
}

/// `RUNTIME.NAME=VALUE`.
fn runtime_option(text: &str) -> Result<(String, String, String), String> {
    let form = || format!("`{text}` is not RUNTIME.NAME=VALUE (e.g. docker.memory=1g)");
    let (key, value) = text.split_once('=').ok_or_else(form)?;
    let (runtime, name) = key.split_once('.').ok_or_else(form)?;
    if runtime.is_empty() || name.is_empty() {
        return Err(form());
    }
    Ok((runtime.into(), name.into(), value.into()))
}

/// The name clap shows for a value.
pub fn possible_value(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .expect("not skipped")
        .get_name()
        .to_string()
}

impl GlobalArgs {
    /// The daemon named by `--host`, else by `SLUICE_HOST` (empty is unset).
    pub fn host(&self) -> Option<String> {
        self.host.clone().or_else(|| from_env("SLUICE_HOST"))
    }

    /// The token given by `--token`, else by `SLUICE_TOKEN` (empty is unset).
    pub fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| from_env("SLUICE_TOKEN"))
    }

    /// The run options of a command: runtime flags, and the log lines to
    /// hear (-v: info and up; -vv: all).
    pub fn run_options(&self, runtime: Option<&RuntimeArgs>) -> anyhow::Result<RunOptions> {
        Ok(RunOptions {
            runtime: match runtime {
                Some(d) => d.runtime()?,
                None => RuntimeOptions::default(),
            },
            logs: match self.verbose {
                0 => None,
                1 => Some(crate::api::LogLevel::Info),
                _ => Some(crate::api::LogLevel::Trace),
            },
        })
    }
}

/// A word's values as clap offers and completes them: each spelled as
/// sluice prints it (`full_refresh`), the dashed spelling (`full-refresh`)
/// taken too.
pub fn words<T>(names: &[&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names.iter().map(|n| {
        let value = PossibleValue::new(*n);
        if n.contains('_') {
            value.alias(n.replace('_', "-"))
        } else {
            value
        }
    }))
    .try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
}

pub const SYNC_MODES: [&str; 2] = ["full_refresh", "incremental"];
pub const DESTINATION_SYNC_MODES: [&str; 3] = ["overwrite", "append", "append_dedup"];
pub const SCHEMA_CHANGE_POLICIES: [&str; 4] =
    ["ignore", "propagate_columns", "propagate_fully", "disable"];
pub const JOB_STATUSES: [&str; 5] = ["pending", "running", "succeeded", "failed", "cancelled"];

/// The help of `--destination-sync-mode`, for every command that takes it.
pub const DESTINATION_SYNC_MODE_HELP: &str = "\
How to write the streams: overwrite (replace the stream's data when the sync \
completes), append (add what is read), append_dedup (add, keeping the newest \
row per primary key) [default: overwrite for full_refresh, append for \
incremental]. A sync interrupted after records but before their state was \
committed sends them again when it resumes (Airbyte's at-least-once \
delivery): append then holds them twice, append_dedup once.";

/// An environment variable's value; an empty one is unset.
fn from_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}
