//! `file`: CSV and JSON Lines files as streams, one stream per file pattern.
//!
//! Types are inferred from the first rows for the catalog; CSV values are
//! then typed by the configured schema, and a value that does not fit is
//! sent as null with a `meta.changes` entry rather than failing the sync.
//! As in Airbyte's file-based sources, every record carries
//! `_ab_source_file_url` and `_ab_source_file_last_modified`, and
//! incremental syncs skip files already read (by path and modification
//! time), with a state after each file.
//!
//! A pattern that matches no file is the config's fault, never an empty
//! stream: `check`, `discover` and `read` fail on it, `read` before it sends
//! anything, so a destination is never told to replace its data with none.

use super::{parse_config, Builtin, BuiltinError, BuiltinResult, Kind, Output};
use crate::protocol::{
    now_millis, AirbyteCatalog, AirbyteStream, ConfiguredAirbyteCatalog, ConnectorSpecification,
    Extra, Message, RecordMessage, RecordMeta, RecordMetaChange, StateMessage, StateSnapshot,
    StreamDescriptor, StreamStatus, SyncMode,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct FileSource;

const FILE_URL: &str = "_ab_source_file_url";
const LAST_MODIFIED: &str = "_ab_source_file_last_modified";
/// Rows read per stream to infer its schema.
const INFER_ROWS: usize = 1000;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum FileFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamConfig {
    name: Option<String>,
    path: String,
    format: Option<FileFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    streams: Vec<StreamConfig>,
    /// Shorthand for a single stream.
    path: Option<String>,
    name: Option<String>,
    format: Option<FileFormat>,
}

/// One configured stream, resolved.
struct FileStream {
    name: String,
    pattern: String,
    format: FileFormat,
    /// The config field the pattern came from (`path`, `streams[1].path`).
    field: String,
}

impl Config {
    fn streams(config: &Value) -> BuiltinResult<Vec<FileStream>> {
        let c: Config = parse_config("file", config)?;
        let mut list: Vec<(String, StreamConfig)> = c
            .streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("streams[{i}].path"), s))
            .collect();
        if let Some(path) = c.path {
            let shorthand = StreamConfig {
                name: c.name,
                path,
                format: c.format,
            };
            list.push(("path".into(), shorthand));
        }
        if list.is_empty() {
            return Err(BuiltinError::config(
                "give a `path` (a file or a glob), or `streams`: [{\"name\", \"path\"}]",
            ));
        }
        let mut out: Vec<FileStream> = Vec::new();
        for (field, s) in list {
            let format = match s.format {
                Some(f) => f,
                None => guess_format(&s.path).ok_or_else(|| {
                    BuiltinError::config(format!(
                        "cannot tell the format of `{}` from its extension; set \"format\": \"csv\" or \"jsonl\"",
                        s.path
                    ))
                })?,
            };
            let name = match s.name {
                Some(n) => n,
                None => stream_name_from(&s.path),
            };
            if out.iter().any(|o| o.name == name) {
                return Err(BuiltinError::config(format!(
                    "two file patterns make the stream `{name}`; give them different \"name\"s"
                )));
            }
            out.push(FileStream {
                name,
                pattern: s.path,
                format,
                field,
            });
        }
        Ok(out)
    }
}

fn guess_format(path: &str) -> Option<FileFormat> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Some(FileFormat::Csv)
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
        Some(FileFormat::Jsonl)
    } else {
        None
    }
}

/// `data/users_*.csv` makes the stream `users`.
fn stream_name_from(pattern: &str) -> String {
    let file = Path::new(pattern)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| pattern.to_string());
    let stem = file.split('.').next().unwrap_or(&file);
    let cleaned: String = stem
        .chars()
        .filter(|c| !matches!(c, '*' | '?' | '[' | ']' | '{' | '}'))
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '_' || c == '-' || c == ' ');
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed.to_string()
    }
}

/// A matched file and its modification time.
struct Found {
    path: PathBuf,
    modified: String,
}

impl FileStream {
    /// The stream's files, oldest first; none is a config error.
    fn files(&self) -> BuiltinResult<Vec<Found>> {
        let found = list_files(&self.pattern)?;
        if found.is_empty() {
            return Err(BuiltinError::config(self.no_file_message()));
        }
        Ok(found)
    }

    /// Why the pattern matched no file, as far as can be told, and what to
    /// do.
    fn no_file_message(&self) -> String {
        let pattern = Path::new(&self.pattern);
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let literal = literal_prefix(pattern);
        let why = if let Some(rest) = self.pattern.strip_prefix("~/") {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/home/you".into());
            format!(
                "`~` is not expanded in a config; write the home directory out, as `{home}/{rest}`"
            )
        } else if !self.pattern.contains(['*', '?', '[']) && pattern.is_dir() {
            let ext = match self.format {
                FileFormat::Csv => "csv",
                FileFormat::Jsonl => "jsonl",
            };
            format!(
                "it is a directory; point `{}` at its files, such as `{}`",
                self.field,
                pattern.join(format!("*.{ext}")).display()
            )
        } else if !literal.as_os_str().is_empty() && !literal.is_dir() {
            let shown = if literal.is_absolute() {
                literal.display().to_string()
            } else {
                format!("{} (in {cwd})", literal.display())
            };
            format!(
                "the directory {shown} does not exist; check `{}`",
                self.field
            )
        } else if pattern.is_absolute() {
            format!("check `{}`", self.field)
        } else {
            format!(
                "check `{}`: a relative path is looked for from the current directory, {cwd}",
                self.field
            )
        };
        format!(
            "no file matches `{}` (stream `{}`): {why}",
            self.pattern, self.name
        )
    }
}

/// The directories of a pattern before its first glob character (`data/in`
/// of `data/in/*.csv`, `data` of `data/a.csv`).
fn literal_prefix(pattern: &Path) -> PathBuf {
    let mut prefix = PathBuf::new();
    let parts: Vec<_> = pattern.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let text = part.as_os_str().to_string_lossy();
        if i + 1 == parts.len() || text.contains(['*', '?', '[']) {
            break;
        }
        prefix.push(part);
    }
    prefix
}

fn list_files(pattern: &str) -> BuiltinResult<Vec<Found>> {
    let paths = glob::glob(pattern)
        .map_err(|e| BuiltinError::config(format!("bad file pattern `{pattern}`: {e}")))?;
    let mut found = Vec::new();
    for p in paths {
        let path = p.map_err(|e| BuiltinError::system(e.to_string()))?;
        let meta = std::fs::metadata(&path)?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        found.push(Found {
            path,
            modified: humantime::format_rfc3339_micros(modified).to_string(),
        });
    }
    // Oldest first, so the cursor only grows.
    found.sort_by(|a, b| (&a.modified, &a.path).cmp(&(&b.modified, &b.path)));
    Ok(found)
}

/// The JSON type one value has, for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Integer,
    Number,
    Boolean,
    String,
    Object,
    Array,
    /// Values of incompatible types: any value goes.
    Any,
}

impl Ty {
    fn of_json(v: &Value) -> Option<Ty> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(_) => Ty::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Ty::Integer,
            Value::Number(_) => Ty::Number,
            Value::String(_) => Ty::String,
            Value::Array(_) => Ty::Array,
            Value::Object(_) => Ty::Object,
        })
    }

    fn of_csv(text: &str) -> Option<Ty> {
        if text.is_empty() {
            None
        } else if text.parse::<i64>().is_ok() {
            Some(Ty::Integer)
        } else if text.parse::<f64>().is_ok_and(f64::is_finite) {
            Some(Ty::Number)
        } else if text == "true" || text == "false" {
            Some(Ty::Boolean)
        } else {
            Some(Ty::String)
        }
    }

    fn merge(self, other: Ty) -> Ty {
        match (self, other) {
            (a, b) if a == b => a,
            (Ty::Integer, Ty::Number) | (Ty::Number, Ty::Integer) => Ty::Number,
            _ => Ty::Any,
        }
    }

    fn schema(self) -> Value {
        let name = match self {
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
            Ty::String => "string",
            Ty::Object => "object",
            Ty::Array => "array",
            Ty::Any => return json!({}),
        };
        json!({"type": ["null", name]})
    }
}

/// Column name to inferred type, in the order columns were first seen.
type Inferred = Vec<(String, Option<Ty>)>;

fn observe(inferred: &mut Inferred, key: &str, ty: Option<Ty>) {
    match inferred.iter_mut().find(|(k, _)| k == key) {
        Some((_, slot)) => {
            *slot = match (*slot, ty) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            }
        }
        None => inferred.push((key.to_string(), ty)),
    }
}

fn infer(stream: &FileStream, files: &[Found]) -> BuiltinResult<Value> {
    let mut inferred: Inferred = Vec::new();
    let mut rows = 0;
    for f in files {
        if rows >= INFER_ROWS {
            break;
        }
        each_row(stream, &f.path, &mut |row| {
            match row {
                Row::Csv(headers, values) => {
                    for (h, v) in headers.iter().zip(values.iter()) {
                        observe(&mut inferred, h, Ty::of_csv(v));
                    }
                }
                Row::Json(map) => {
                    for (k, v) in map {
                        observe(&mut inferred, k, Ty::of_json(v));
                    }
                }
            }
            rows += 1;
            Ok(rows < INFER_ROWS)
        })?;
    }
    let mut props = Map::new();
    for (name, ty) in inferred {
        // A column only ever empty is typed as a nullable string.
        props.insert(name, ty.unwrap_or(Ty::String).schema());
    }
    props.insert(FILE_URL.into(), json!({"type": "string"}));
    props.insert(
        LAST_MODIFIED.into(),
        json!({"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"}),
    );
    Ok(json!({"type": "object", "properties": props}))
}

enum Row<'a> {
    Csv(&'a csv::StringRecord, &'a csv::StringRecord),
    Json(&'a Map<String, Value>),
}

/// Calls `f` for each row of a file until it returns false.
fn each_row(
    stream: &FileStream,
    path: &Path,
    f: &mut dyn FnMut(Row<'_>) -> BuiltinResult<bool>,
) -> BuiltinResult<()> {
    let open_err =
        |e: std::io::Error| BuiltinError::config(format!("cannot read {}: {e}", path.display()));
    match stream.format {
        FileFormat::Csv => {
            let mut r = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(path)
                .map_err(|e| {
                    BuiltinError::config(format!("cannot read {}: {e}", path.display()))
                })?;
            let headers = r
                .headers()
                .map_err(|e| BuiltinError::config(format!("{}: {e}", path.display())))?
                .clone();
            let mut record = csv::StringRecord::new();
            loop {
                match r.read_record(&mut record) {
                    Ok(false) => return Ok(()),
                    Ok(true) => {
                        if !f(Row::Csv(&headers, &record))? {
                            return Ok(());
                        }
                    }
                    Err(e) => return Err(BuiltinError::config(format!("{}: {e}", path.display()))),
                }
            }
        }
        FileFormat::Jsonl => {
            let file = std::fs::File::open(path).map_err(open_err)?;
            let reader = std::io::BufReader::with_capacity(256 * 1024, file);
            for (n, line) in reader.lines().enumerate() {
                let line = line.map_err(open_err)?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(&line).map_err(|e| {
                    BuiltinError::config(format!(
                        "{} line {}: not JSON: {e}",
                        path.display(),
                        n + 1
                    ))
                })?;
                let Value::Object(map) = value else {
                    return Err(BuiltinError::config(format!(
                        "{} line {}: not a JSON object",
                        path.display(),
                        n + 1
                    )));
                };
                if !f(Row::Json(&map))? {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

/// Types a CSV cell by the column's schema; `None` when it does not fit.
fn typed(text: &str, schema: Option<&Value>) -> Option<Value> {
    if text.is_empty() {
        return Some(Value::Null);
    }
    let types: Vec<&str> = match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Some(Value::String(text.to_string())),
    };
    for t in types {
        let v = match t {
            "integer" => text.parse::<i64>().ok().map(Value::from),
            "number" => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            "boolean" => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            "string" => Some(Value::String(text.to_string())),
            "object" | "array" => serde_json::from_str(text).ok(),
            _ => None,
        };
        if v.is_some() {
            return v;
        }
    }
    None
}

impl Builtin for FileSource {
    fn name(&self) -> &'static str {
        "file"
    }

    fn kind(&self) -> Kind {
        Kind::Source
    }

    fn description(&self) -> &'static str {
        "CSV and JSON Lines files (a path or a glob), one stream per pattern"
    }

    fn spec(&self) -> ConnectorSpecification {
        let stream = json!({
            "type": "object",
            "required": ["path"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "Stream name; by default the file name without extension or glob characters."},
                "path": {"type": "string", "minLength": 1, "sluice_path": true, "description": "A file or a glob (data/*.csv)."},
                "format": {"type": "string", "enum": ["csv", "jsonl"], "description": "By default from the extension."}
            }
        });
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": "File Source Spec",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "path": stream["properties"]["path"],
                    "name": stream["properties"]["name"],
                    "format": stream["properties"]["format"],
                    "streams": {"type": "array", "items": stream, "description": "Several streams, one per file pattern."}
                }
            }),
            supports_incremental: Some(true),
            supported_destination_sync_modes: Vec::new(),
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }

    fn check(&self, config: &Value) -> BuiltinResult<()> {
        for s in Config::streams(config)? {
            s.files()?;
        }
        Ok(())
    }

    fn discover(&self, config: &Value) -> BuiltinResult<AirbyteCatalog> {
        let mut streams = Vec::new();
        for s in Config::streams(config)? {
            let files = s.files()?;
            let mut stream = AirbyteStream::new(&s.name, infer(&s, &files)?);
            stream.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
            stream.source_defined_cursor = Some(true);
            stream.default_cursor_field = vec![LAST_MODIFIED.into()];
            stream.is_file_based = Some(false);
            streams.push(stream);
        }
        Ok(AirbyteCatalog {
            streams,
            extra: Extra::new(),
        })
    }

    fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        state: Option<&Value>,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        let streams = Config::streams(config)?;
        let state = match state {
            Some(v) => StateSnapshot::from_file_value(v.clone())
                .map_err(|e| BuiltinError::config(format!("invalid state: {e}")))?,
            None => None,
        };
        // Every stream and its files are found before anything is sent: a
        // config that no longer fits the catalog fails the read whole.
        let mut plan = Vec::with_capacity(catalog.streams.len());
        for configured in &catalog.streams {
            let stream = streams
                .iter()
                .find(|s| s.name == configured.stream.name)
                .ok_or_else(|| {
                    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
                    BuiltinError::config(format!(
                        "the catalog names stream `{}`, which the config does not define \
                         (its streams: {}); discover the streams again",
                        configured.stream.name,
                        names.join(", ")
                    ))
                })?;
            plan.push((configured, stream, stream.files()?));
        }
        for (configured, stream, files) in plan {
            let descriptor = configured.stream.descriptor();
            let incremental = configured.sync_mode == SyncMode::Incremental;
            let mut history: Map<String, Value> = match (&state, incremental) {
                (Some(s), true) => s
                    .stream_state(&descriptor)
                    .and_then(|v| v.get("history"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                _ => Map::new(),
            };
            let props = configured.stream.json_schema.get("properties");
            out.stream_status(&descriptor, StreamStatus::Started)?;
            out.stream_status(&descriptor, StreamStatus::Running)?;
            for f in files {
                let url = f.path.to_string_lossy().into_owned();
                if history.get(&url).and_then(Value::as_str) == Some(f.modified.as_str()) {
                    continue;
                }
                read_file(stream, &descriptor, &f, &url, props, out)?;
                if incremental {
                    history.insert(url, Value::String(f.modified.clone()));
                    let cursor = history
                        .values()
                        .filter_map(Value::as_str)
                        .max()
                        .unwrap_or_default()
                        .to_string();
                    out.state(StateMessage::stream(
                        descriptor.clone(),
                        json!({"history": history, LAST_MODIFIED: cursor}),
                    ))?;
                }
            }
            out.stream_status(&descriptor, StreamStatus::Complete)?;
        }
        out.flush()
    }
}

fn read_file(
    stream: &FileStream,
    descriptor: &StreamDescriptor,
    f: &Found,
    url: &str,
    props: Option<&Value>,
    out: &mut Output,
) -> BuiltinResult<()> {
    let emitted_at = now_millis();
    if stream.format == FileFormat::Jsonl {
        return read_jsonl(descriptor, f, url, emitted_at, out);
    }
    let mut csv = CsvRecords::new(descriptor, (url, f), emitted_at, props);
    let mut n = 0u64;
    each_row(stream, &f.path, &mut |row| {
        n += 1;
        if n.is_multiple_of(4096) {
            out.check_cancel()?;
        }
        let Row::Csv(headers, values) = row else {
            unreachable!("JSON Lines are read by read_jsonl")
        };
        if csv.write(headers, values, out)? {
            return Ok(true);
        }
        let mut changes = Vec::new();
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(values.iter()) {
            let value = typed(v, props.and_then(|p| p.get(h))).unwrap_or_else(|| {
                changes.push(nulled(h));
                Value::Null
            });
            m.insert(h.to_string(), value);
        }
        send_record(descriptor, m, (url, f), emitted_at, changes, out)?;
        Ok(true)
    })
}

/// The one type besides null a schema gives (`None`: it gives none, so
/// the value is a string; `Some("")`: several).
fn only_type(schema: Option<&Value>) -> Option<&str> {
    match schema?.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(ts)) => {
            let mut it = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null");
            match (it.next(), it.next()) {
                (Some(t), None) => Some(t),
                _ => Some(""),
            }
        }
        _ => None,
    }
}

/// The two fields the source adds to each record, as JSON members.
fn file_fields(url: &str, f: &Found) -> String {
    format!(
        r#""{FILE_URL}":{},"{LAST_MODIFIED}":{}"#,
        json!(url),
        json!(f.modified)
    )
}

/// A CSV value that does not fit its column's type, sent as null.
fn nulled(field: &str) -> RecordMetaChange {
    RecordMetaChange {
        field: field.to_string(),
        change: "NULLED".into(),
        reason: "SOURCE_SERIALIZATION_ERROR".into(),
        extra: Extra::new(),
    }
}

/// Writes a CSV file's rows as RECORD lines directly, each cell typed by
/// its column's schema as [`typed`] types it, without building a JSON value
/// per row. A file whose header names a column twice, or one of the two
/// fields the source adds, goes the general way.
struct CsvRecords {
    /// The line up to `data`'s opening brace.
    head: Vec<u8>,
    /// The file's two fields and the end of `data`.
    file_fields: Vec<u8>,
    /// The file's header, once read, and for it each column's key
    /// (`"name":`) and schema.
    headers: Option<csv::StringRecord>,
    columns: Vec<(Vec<u8>, Option<Value>)>,
    props: Option<Value>,
    line: Vec<u8>,
}

impl CsvRecords {
    fn new(
        descriptor: &StreamDescriptor,
        (url, f): (&str, &Found),
        emitted_at: i64,
        props: Option<&Value>,
    ) -> Self {
        let mut head = super::record_head(descriptor);
        head.extend_from_slice(format!(r#""emitted_at":{emitted_at},"data":{{"#).as_bytes());
        let file_fields = format!("{}}}", file_fields(url, f)).into_bytes();
        CsvRecords {
            head,
            file_fields,
            headers: None,
            columns: Vec::new(),
            props: props.cloned(),
            line: Vec::with_capacity(4096),
        }
    }

    /// Writes the row's record; false (nothing written) when the file's
    /// header needs the general way.
    fn write(
        &mut self,
        headers: &csv::StringRecord,
        values: &csv::StringRecord,
        out: &mut Output,
    ) -> BuiltinResult<bool> {
        // One file, one header: read it once (comparing it per row cost
        // a tenth of the thread).
        if self.headers.is_none() {
            let mut names: Vec<&str> = headers.iter().collect();
            names.sort_unstable();
            let clash = names.windows(2).any(|w| w[0] == w[1])
                || names.iter().any(|h| *h == FILE_URL || *h == LAST_MODIFIED);
            self.columns = if clash {
                Vec::new()
            } else {
                headers
                    .iter()
                    .map(|h| {
                        let mut key = serde_json::to_vec(h).expect("a string serializes");
                        key.push(b':');
                        let schema = self.props.as_ref().and_then(|p| p.get(h)).cloned();
                        (key, schema)
                    })
                    .collect()
            };
            self.headers = Some(headers.clone());
        }
        if self.columns.is_empty() && !headers.is_empty() {
            return Ok(false);
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(&self.head);
        let mut changes = Vec::new();
        for ((key, schema), (h, text)) in self.columns.iter().zip(headers.iter().zip(values)) {
            line.extend_from_slice(key);
            let written = match (only_type(schema.as_ref()), text) {
                (_, "") => {
                    line.extend_from_slice(b"null");
                    Ok(())
                }
                // The usual cases without a value in between.
                (Some("string") | None, _) => serde_json::to_writer(&mut *line, text),
                (Some("integer"), _) if text.parse::<i64>().is_ok() => {
                    serde_json::to_writer(&mut *line, &text.parse::<i64>().unwrap_or_default())
                }
                _ => match typed(text, schema.as_ref()) {
                    Some(v) => serde_json::to_writer(&mut *line, &v),
                    None => {
                        changes.push(nulled(h));
                        line.extend_from_slice(b"null");
                        Ok(())
                    }
                },
            };
            written.map_err(|e| BuiltinError::system(e.to_string()))?;
            line.push(b',');
        }
        line.extend_from_slice(&self.file_fields);
        if !changes.is_empty() {
            line.extend_from_slice(br#","meta":"#);
            let meta = RecordMeta {
                changes,
                extra: Extra::new(),
            };
            serde_json::to_writer(&mut *line, &meta)
                .map_err(|e| BuiltinError::system(e.to_string()))?;
        }
        line.extend_from_slice(b"}}\n");
        out.raw(line)?;
        Ok(true)
    }
}

/// A record of `data` with the file's two fields added.
fn send_record(
    descriptor: &StreamDescriptor,
    mut data: Map<String, Value>,
    (url, f): (&str, &Found),
    emitted_at: i64,
    changes: Vec<RecordMetaChange>,
    out: &mut Output,
) -> BuiltinResult<()> {
    data.insert(FILE_URL.into(), Value::String(url.to_string()));
    data.insert(LAST_MODIFIED.into(), Value::String(f.modified.clone()));
    out.message(&Message::Record(RecordMessage {
        namespace: descriptor.namespace.clone(),
        stream: descriptor.name.clone(),
        data: Value::Object(data),
        emitted_at,
        meta: (!changes.is_empty()).then(|| RecordMeta {
            changes,
            extra: Extra::new(),
        }),
        file_reference: None,
        extra: Extra::new(),
    }))
}

/// A JSON Lines file's records, each written around the line's own text:
/// the line is checked to be a JSON object (without building it) and the
/// file's two fields are appended, so values reach the destination as the
/// file has them. A line that has either field already goes the slow way,
/// which replaces it.
fn read_jsonl(
    descriptor: &StreamDescriptor,
    f: &Found,
    url: &str,
    emitted_at: i64,
    out: &mut Output,
) -> BuiltinResult<()> {
    let path = f.path.display();
    let open_err = |e: std::io::Error| BuiltinError::config(format!("cannot read {path}: {e}"));
    let file = std::fs::File::open(&f.path).map_err(open_err)?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut head = super::record_head(descriptor);
    head.extend_from_slice(format!(r#""emitted_at":{emitted_at},"data":"#).as_bytes());
    let tail = format!("{}}}}}}}", file_fields(url, f));
    let own_fields = memchr::memmem::Finder::new("\"_ab_source_file_");
    let (mut line, mut record) = (Vec::new(), Vec::new());
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(open_err)? == 0 {
            return Ok(());
        }
        n += 1;
        if n.is_multiple_of(4096) {
            out.check_cancel()?;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let bad = |what: String| BuiltinError::config(format!("{path} line {n}: {what}"));
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8".into()))?;
        serde_json::from_str::<&serde_json::value::RawValue>(text)
            .map_err(|e| bad(format!("not JSON: {e}")))?;
        if !text.starts_with('{') {
            return Err(bad("not a JSON object".into()));
        }
        if own_fields.find(text.as_bytes()).is_some() {
            let Ok(Value::Object(data)) = serde_json::from_str(text) else {
                return Err(bad("not a JSON object".into()));
            };
            send_record(descriptor, data, (url, f), emitted_at, Vec::new(), out)?;
            continue;
        }
        let fields = &text[1..text.len() - 1];
        record.clear();
        record.extend_from_slice(&head);
        record.extend_from_slice(&text.as_bytes()[..text.len() - 1]);
        if !fields.trim_ascii().is_empty() {
            record.push(b',');
        }
        record.extend_from_slice(tail.as_bytes());
        record.push(b'\n');
        out.raw(&record)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;

    #[test]
    fn names_and_formats_come_from_the_pattern() {
        assert_eq!(stream_name_from("data/users_*.csv"), "users");
        assert_eq!(stream_name_from("/x/orders.jsonl"), "orders");
        assert_eq!(stream_name_from("*.csv"), "file");
        assert_eq!(guess_format("a.CSV"), Some(FileFormat::Csv));
        assert_eq!(guess_format("a.ndjson"), Some(FileFormat::Jsonl));
        assert_eq!(guess_format("a.txt"), None);
    }

    #[test]
    fn csv_types_are_inferred_then_applied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("people.csv"),
            "id,score,ok,name,empty\n1,2.5,true,ann,\n2,3,false,bob,\n",
        )
        .unwrap();
        let config = json!({"path": dir.path().join("people*.csv")});
        let catalog = FileSource.discover(&config).unwrap();
        let props = &catalog.streams[0].json_schema["properties"];
        assert_eq!(catalog.streams[0].name, "people");
        assert_eq!(props["id"]["type"], json!(["null", "integer"]));
        assert_eq!(props["score"]["type"], json!(["null", "number"]));
        assert_eq!(props["ok"]["type"], json!(["null", "boolean"]));
        assert_eq!(props["name"]["type"], json!(["null", "string"]));
        assert_eq!(props["empty"]["type"], json!(["null", "string"]));
        assert_eq!(typed("x", Some(&props["id"])), None);
        assert_eq!(typed("7", Some(&props["id"])), Some(json!(7)));
        assert_eq!(typed("", Some(&props["id"])), Some(Value::Null));
    }

    #[test]
    fn csv_rows_are_written_as_the_general_path_builds_them() {
        let dir = tempfile::tempdir().unwrap();
        let read = |name: &str, text: &str| {
            let file = dir.path().join(name);
            std::fs::write(&file, text).unwrap();
            let config = json!({"path": &file});
            let catalog = FileSource.discover(&config).unwrap();
            let configured: ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams": [{
                "stream": catalog.streams[0], "sync_mode": "full_refresh",
                "destination_sync_mode": "append"
            }]}))
            .unwrap();
            let (mut out, buf) = Output::capture();
            FileSource
                .read(&config, &configured, None, &mut out)
                .unwrap();
            drop(out);
            let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
            let records: Vec<Value> = text
                .lines()
                .filter(|l| l.contains("\"RECORD\""))
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["record"].clone())
                .collect();
            records
        };
        // 1001 rows: the last, past what inference saw, does not fit.
        let mut csv = "id,score,ok,name,\"q\"\"k\"\n".to_string();
        for i in 0..1000 {
            csv.push_str(&format!("{i},{i}.5,true,\"a, \"\"b\"\"\nc\",\n"));
        }
        csv.push_str("x,1e2,maybe,é,{}\n");
        let records = read("t.csv", &csv);
        assert_eq!(records.len(), 1001);
        let first = &records[0]["data"];
        assert_eq!(first["id"], json!(0));
        assert_eq!(first["score"], json!(0.5));
        assert_eq!(first["ok"], json!(true));
        assert_eq!(first["name"], json!("a, \"b\"\nc"));
        assert_eq!(first["q\"k"], Value::Null);
        assert!(first["_ab_source_file_url"]
            .as_str()
            .unwrap()
            .ends_with("t.csv"));
        assert!(records[0].get("meta").is_none());
        let last = &records[1000];
        assert_eq!(last["data"]["id"], Value::Null);
        assert_eq!(last["data"]["score"], json!(100.0));
        assert_eq!(last["data"]["name"], json!("é"));
        assert_eq!(last["data"]["q\"k"], json!("{}"));
        let nulled: Vec<&str> = last["meta"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(nulled, ["id", "ok"]);
        // A header naming a column twice goes the general way: the last wins.
        let records = read("d.csv", "a,b,a\n1,2,3\n");
        assert_eq!(records[0]["data"]["a"], json!(3));
        assert_eq!(records[0]["data"]["b"], json!(2));
    }

    #[test]
    fn json_lines_are_sent_as_written_with_the_file_fields_added() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("e.jsonl");
        std::fs::write(
            &file,
            "{\"a\":1.50,\"b\":\"x\\u00e9\"}\n\n  {  }  \n{\"_ab_source_file_url\":\"old\",\"c\":[1]}\n",
        )
        .unwrap();
        let config = json!({"streams": [{"name": "events", "path": &file}]});
        let stream = AirbyteStream::new("events", json!({"type": "object"}));
        let catalog: ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams": [{
            "stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "append"
        }]}))
        .unwrap();
        let (mut out, buf) = Output::capture();
        FileSource.read(&config, &catalog, None, &mut out).unwrap();
        drop(out);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let records: Vec<&str> = text.lines().filter(|l| l.contains("\"RECORD\"")).collect();
        assert_eq!(records.len(), 3, "{text}");
        // The line's own text, the file's fields after it.
        assert!(
            records[0].contains(r#""data":{"a":1.50,"b":"x\u00e9","_ab_source_file_url":"#),
            "{}",
            records[0]
        );
        // A line with a file field of its own has it replaced, not repeated.
        assert_eq!(records[2].matches(FILE_URL).count(), 1, "{}", records[2]);
        let url = file.to_string_lossy().into_owned();
        for (line, keys) in records.iter().zip([
            &["a", "b", FILE_URL, LAST_MODIFIED][..],
            &[FILE_URL, LAST_MODIFIED],
            &[FILE_URL, "c", LAST_MODIFIED],
        ]) {
            let Ok(Message::Record(r)) = Message::parse(line.as_bytes()) else {
                panic!("not a record: {line}");
            };
            assert_eq!(r.stream, "events");
            let data = r.data.as_object().unwrap();
            assert_eq!(data.keys().collect::<Vec<_>>(), keys.to_vec(), "{line}");
            assert_eq!(data[FILE_URL], json!(url));
        }

        std::fs::write(&file, "{\"a\":1}\n[1]\n").unwrap();
        let (mut out, _) = Output::capture();
        let err = FileSource
            .read(&config, &catalog, None, &mut out)
            .unwrap_err();
        assert!(err.message.contains("line 2: not a JSON object"), "{err:?}");
        std::fs::write(&file, "{\"a\":}\n").unwrap();
        let err = FileSource
            .read(&config, &catalog, None, &mut out)
            .unwrap_err();
        assert!(err.message.contains("line 1: not JSON"), "{err:?}");
    }

    fn configured(names: &[&str]) -> ConfiguredAirbyteCatalog {
        let streams: Vec<Value> = names
            .iter()
            .map(|n| {
                json!({"stream": AirbyteStream::new(n, json!({"type": "object"})),
                    "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"})
            })
            .collect();
        serde_json::from_value(json!({ "streams": streams })).unwrap()
    }

    /// What `read` sent before it returned, and its error.
    fn read_err(config: &Value, catalog: &ConfiguredAirbyteCatalog) -> (String, BuiltinError) {
        let (mut out, buf) = Output::capture();
        let err = FileSource
            .read(config, catalog, None, &mut out)
            .expect_err("the read fails");
        out.flush().unwrap();
        let sent = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        (sent, err)
    }

    #[test]
    fn a_pattern_that_matches_no_file_is_a_config_error_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("users.csv"), "id\n1\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // Every way of pointing at files, each matching nothing, with the
        // stream that does match first so a partial read would show.
        let cases = [
            (
                json!({"path": format!("{d}/nope/*.csv")}),
                &["file"][..],
                format!(
                    "no file matches `{d}/nope/*.csv` (stream `file`): the directory {d}/nope does not exist; check `path`"
                ),
            ),
            (
                json!({"streams": [{"path": format!("{d}/users.csv")}, {"name": "orders", "path": format!("{d}/orders_*.csv")}]}),
                &["users", "orders"][..],
                format!("no file matches `{d}/orders_*.csv` (stream `orders`): check `streams[1].path`"),
            ),
            (
                json!({"path": format!("{d}/users.csv"), "streams": [{"name": "gone", "path": format!("{d}/gone.jsonl")}]}),
                &["users", "gone"][..],
                format!("no file matches `{d}/gone.jsonl` (stream `gone`): check `streams[0].path`"),
            ),
            (
                json!({"path": format!("{d}/sub"), "format": "csv"}),
                &["sub"][..],
                format!(
                    "no file matches `{d}/sub` (stream `sub`): it is a directory; point `path` at its files, such as `{d}/sub/*.csv`"
                ),
            ),
        ];
        for (config, streams, want) in cases {
            let (sent, read) = read_err(&config, &configured(streams));
            assert_eq!(sent, "", "nothing is sent before the error");
            let discover = FileSource.discover(&config).expect_err("discover fails");
            for err in [read, discover] {
                assert_eq!(err.failure_type, FailureType::ConfigError);
                assert_eq!(err.message, want);
            }
            assert_eq!(FileSource.check(&config).unwrap_err().message, want);
        }
    }

    #[test]
    fn a_relative_pattern_names_the_directory_it_was_looked_for_from() {
        let cwd = std::env::current_dir().unwrap();
        let cwd = cwd.display();
        for (path, want) in [
            (
                "nope/*.csv",
                format!("no file matches `nope/*.csv` (stream `file`): the directory nope (in {cwd}) does not exist; check `path`"),
            ),
            (
                "nope.csv",
                format!("no file matches `nope.csv` (stream `nope`): check `path`: a relative path is looked for from the current directory, {cwd}"),
            ),
        ] {
            let err = FileSource.check(&json!({ "path": path })).unwrap_err();
            assert_eq!(err.message, want);
        }
    }

    #[test]
    fn a_pattern_in_the_home_directory_says_tilde_is_not_expanded() {
        let home = std::env::var("HOME").unwrap();
        let config = json!({"path": "~/sluice-test-nope/*.csv"});
        assert_eq!(
            FileSource.check(&config).unwrap_err().message,
            format!(
                "no file matches `~/sluice-test-nope/*.csv` (stream `file`): `~` is not expanded in a config; \
                 write the home directory out, as `{home}/sluice-test-nope/*.csv`"
            )
        );
    }

    #[test]
    fn an_empty_file_is_an_empty_stream_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.jsonl"), "").unwrap();
        let config = json!({"path": dir.path().join("users.jsonl")});
        FileSource.check(&config).unwrap();
        FileSource.discover(&config).unwrap();
        let (mut out, buf) = Output::capture();
        FileSource
            .read(&config, &configured(&["users"]), None, &mut out)
            .unwrap();
        drop(out);
        let sent = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(sent.contains("COMPLETE"), "{sent}");
        assert!(!sent.contains("RECORD"), "{sent}");
    }

    #[test]
    fn a_catalog_stream_the_config_lost_fails_the_read_before_any_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.csv"), "id\n1\n").unwrap();
        let config = json!({"path": dir.path().join("users.csv")});
        let (sent, err) = read_err(&config, &configured(&["users", "orders"]));
        assert_eq!(sent, "", "nothing is sent before the error");
        assert_eq!(err.failure_type, FailureType::ConfigError);
        assert_eq!(
            err.message,
            "the catalog names stream `orders`, which the config does not define \
             (its streams: users); discover the streams again"
        );
    }

    #[test]
    fn json_lines_with_mixed_types_widen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("e.jsonl"),
            "{\"a\":1,\"b\":\"x\"}\n{\"a\":1.5,\"b\":2,\"c\":{\"d\":1}}\n",
        )
        .unwrap();
        let config = json!({"streams": [{"name": "events", "path": dir.path().join("e.jsonl")}]});
        let catalog = FileSource.discover(&config).unwrap();
        let props = &catalog.streams[0].json_schema["properties"];
        assert_eq!(props["a"]["type"], json!(["null", "number"]));
        assert_eq!(props["b"], json!({}));
        assert_eq!(props["c"]["type"], json!(["null", "object"]));
    }
}
