//! `file`: CSV and JSON Lines files as streams, one stream per file pattern.
//!
//! Types are inferred from the first rows for the catalog; CSV values are
//! then typed by the configured schema, and a value that does not fit is
//! sent as null with a `meta.changes` entry rather than failing the sync.
//!
//! No CSV value is changed or dropped without a word: only a plain number
//! is typed as one (`00123`, `+5`, `1_000` stay text), a number is sent
//! as the file writes it (`1.50`, an integer past 64 bits to its last
//! digit), a header naming a column twice has the
//! repeats renamed (`a_2`, logged), and a row with more fields than the
//! header fails the read with its file and line; one with fewer has nulls.
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
        } else if plain_integer(text) {
            Some(Ty::Integer)
        } else if plain_number(text) {
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

/// Whether CSV text is an integer as JSON writes it and it fits an i64:
/// `00123` (a zip code, an id) or `+5` would not survive the round trip.
fn plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = match digits.as_bytes() {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical && text.parse::<i64>().is_ok()
}

/// Whether CSV text is an integer as JSON writes it, of any length: a
/// value of a column declared integer, sent as written (JSON Schema's
/// integers have no bound; a destination that cannot hold one says so).
fn integer_literal(text: &str) -> bool {
    plain_number(text) && !text.contains(['.', 'e', 'E'])
}

/// Whether CSV text is a JSON number literal (`-1.50`, `2e10`, an integer
/// of any length), so it can be sent exactly as written. `.5`, `1.`,
/// `007`, `NaN` and `inf` are not: they stay text.
fn plain_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    match digits(&mut i) {
        0 => return false,
        n if n > 1 && b[int_start] == b'0' => return false,
        _ => {}
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A CSV header with every name made unique: a repeat, or a name the
/// source adds to each record, gets `_2` (`_3`, ...) so no column is lost.
/// Returns the renames, `(column number, old name, new name)`.
fn unique_headers(raw: &csv::StringRecord) -> (csv::StringRecord, Vec<(usize, String, String)>) {
    let mut taken: std::collections::HashSet<String> =
        [FILE_URL, LAST_MODIFIED].map(String::from).into();
    let mut renames = Vec::new();
    let mut out = csv::StringRecord::with_capacity(raw.as_slice().len(), raw.len());
    // Names the header has as written are kept for the column that has
    // them first, so a rename never takes a later column's own name.
    let written: std::collections::HashSet<&str> = raw.iter().collect();
    for (i, name) in raw.iter().enumerate() {
        if taken.insert(name.to_string()) {
            out.push_field(name);
            continue;
        }
        let mut n = 2;
        let new = loop {
            let candidate = format!("{name}_{n}");
            if !written.contains(candidate.as_str()) && taken.insert(candidate.clone()) {
                break candidate;
            }
            n += 1;
        };
        out.push_field(&new);
        renames.push((i + 1, name.to_string(), new));
    }
    (out, renames)
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
            let (headers, _) = unique_headers(
                r.headers()
                    .map_err(|e| BuiltinError::config(format!("{}: {e}", path.display())))?,
            );
            let mut record = csv::StringRecord::new();
            loop {
                match r.read_record(&mut record) {
                    Ok(false) => return Ok(()),
                    Ok(true) => {
                        // Fields past the header's last column have no name
                        // to go under; dropping them would lose data. Empty
                        // ones (a trailing comma) hold none.
                        if record.iter().skip(headers.len()).any(|v| !v.is_empty()) {
                            let line = record.position().map_or(0, csv::Position::line);
                            return Err(BuiltinError::config(format!(
                                "{} line {line}: the row has {} fields but the header names {}; \
                                 the extra values have no column. Add their names to the header \
                                 (line 1) or quote the field that holds the delimiter",
                                path.display(),
                                record.len(),
                                headers.len()
                            )));
                        }
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
            "integer" if plain_integer(text) => text.parse::<i64>().ok().map(Value::from),
            // As written, to its last digit (`1.50`, past an f64's).
            "number" if plain_number(text) => serde_json::from_str::<Value>(text).ok(),
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
                "path": {"type": "string", "minLength": 1, "sluice_path": true, "description": "A file or a glob (data/*.csv); every file it matches is read into this one stream, oldest first."},
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
    log_renamed_columns(&f.path, out)?;
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
        csv.write(headers, values, out)?;
        Ok(true)
    })
}

/// Says which columns of a CSV file are read under another name than its
/// header gives ([`unique_headers`]), so a renamed column is never a
/// surprise downstream.
fn log_renamed_columns(path: &Path, out: &mut Output) -> BuiltinResult<()> {
    let Ok(mut r) = csv::ReaderBuilder::new().flexible(true).from_path(path) else {
        // each_row reports it with what to do.
        return Ok(());
    };
    let Ok(raw) = r.headers() else {
        return Ok(());
    };
    let (_, renames) = unique_headers(raw);
    if renames.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = renames
        .iter()
        .map(|(i, old, new)| format!("column {i} `{old}` as `{new}`"))
        .collect();
    out.log(
        crate::protocol::LogLevel::Warn,
        format!(
            "The header of {} names a column more than once, or names one the source adds \
             to each record; reading {} so that no column is lost.",
            path.display(),
            list.join(", ")
        ),
    )
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
/// per row. The header's names are unique ([`unique_headers`]), so each
/// is one key.
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

    /// Writes the row's record.
    fn write(
        &mut self,
        headers: &csv::StringRecord,
        values: &csv::StringRecord,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        // One file, one header: read it once (comparing it per row cost
        // a tenth of the thread).
        if self.headers.is_none() {
            self.columns = headers
                .iter()
                .map(|h| {
                    let mut key = serde_json::to_vec(h).expect("a string serializes");
                    key.push(b':');
                    let schema = self.props.as_ref().and_then(|p| p.get(h)).cloned();
                    (key, schema)
                })
                .collect();
            self.headers = Some(headers.clone());
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(&self.head);
        let mut changes = Vec::new();
        for (i, ((key, schema), h)) in self.columns.iter().zip(headers.iter()).enumerate() {
            line.extend_from_slice(key);
            // A short row's missing fields are nulls.
            let text = values.get(i).unwrap_or("");
            let written = match (only_type(schema.as_ref()), text) {
                (_, "") => {
                    line.extend_from_slice(b"null");
                    Ok(())
                }
                // The usual cases without a value in between.
                (Some("string") | None, _) => serde_json::to_writer(&mut *line, text),
                (Some("integer"), _) if integer_literal(text) => {
                    line.extend_from_slice(text.as_bytes());
                    Ok(())
                }
                // A number as written: `1.50` stays `1.50`, a long one
                // keeps every digit.
                (Some("number"), _) if plain_number(text) => {
                    line.extend_from_slice(text.as_bytes());
                    Ok(())
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
        out.raw(line)
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
    fn csv_rows_are_records_typed_by_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let read = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap();
            let text = raw_line(dir.path(), name);
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
    }

    /// Discovers and reads one file; its RECORDs' `data` and the LOG
    /// messages, or the read's error.
    fn read_one(dir: &Path, name: &str, text: &str) -> Result<(Vec<Value>, String), BuiltinError> {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let config = json!({ "path": &file });
        let catalog = FileSource.discover(&config)?;
        let configured: ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams": [{
            "stream": catalog.streams[0], "sync_mode": "full_refresh",
            "destination_sync_mode": "append"
        }]}))
        .unwrap();
        let (mut out, buf) = Output::capture();
        FileSource.read(&config, &configured, None, &mut out)?;
        drop(out);
        let sent = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let mut records = Vec::new();
        let mut logs = String::new();
        for line in sent.lines() {
            let m: Value = serde_json::from_str(line).unwrap();
            match m["type"].as_str() {
                Some("RECORD") => records.push(m["record"].clone()),
                Some("LOG") => logs.push_str(m["log"]["message"].as_str().unwrap()),
                _ => {}
            }
        }
        Ok((records, logs))
    }

    #[test]
    fn csv_text_that_only_looks_numeric_stays_text_and_numbers_keep_their_digits() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _) = read_one(
            dir.path(),
            "n.csv",
            "zip,big,price,id\n00123,123456789012345678901234,1.50,7\n\
             02134,1,2.00,0\n+5,2,1e2,-3\n",
        )
        .unwrap();
        let raw: Vec<String> = records.iter().map(|r| r["data"].to_string()).collect();
        let row = |i: usize| records[i]["data"].clone();
        assert_eq!(row(0)["zip"], json!("00123"));
        assert_eq!(row(1)["zip"], json!("02134"));
        assert_eq!(row(2)["zip"], json!("+5"));
        assert_eq!(row(0)["id"], json!(7));
        assert_eq!(row(2)["id"], json!(-3));
        assert!(records.iter().all(|r| r.get("meta").is_none()), "{raw:?}");
        // What the destination is sent, byte for byte: serde_json keeps a
        // number's text only as far as an f64 goes.
        let sent = raw_line(dir.path(), "n.csv");
        for want in [
            r#""big":123456789012345678901234,"#,
            r#""price":1.50,"#,
            r#""price":2.00,"#,
            r#""price":1e2,"#,
        ] {
            assert!(sent.contains(want), "{want} in {sent}");
        }

        for (text, integer, number) in [
            ("0", true, true),
            ("-12", true, true),
            ("007", false, false),
            ("+5", false, false),
            ("1_000", false, false),
            ("9223372036854775808", false, true),
            ("-1e3", false, true),
            ("1.50", false, true),
            ("-0.5e-3", false, true),
            (".5", false, false),
            ("5.", false, false),
            ("1e", false, false),
            ("NaN", false, false),
            ("inf", false, false),
            ("-", false, false),
        ] {
            assert_eq!(plain_integer(text), integer, "{text}");
            assert_eq!(plain_number(text), number, "{text}");
            let whole = number && !text.contains(['.', 'e']);
            assert_eq!(integer_literal(text), whole, "{text}");
        }
    }

    /// The lines `read` sends for a file already in `dir`.
    fn raw_line(dir: &Path, name: &str) -> String {
        let config = json!({ "path": dir.join(name) });
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
        let sent = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        sent
    }

    #[test]
    fn a_header_naming_a_column_twice_keeps_both_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (records, logs) = read_one(
            dir.path(),
            "d.csv",
            "a,b,a,a_2,_ab_source_file_url\n1,2,3,4,5\n",
        )
        .unwrap();
        let data = &records[0]["data"];
        assert_eq!(data["a"], json!(1));
        assert_eq!(data["b"], json!(2));
        assert_eq!(data["a_3"], json!(3));
        assert_eq!(data["a_2"], json!(4));
        assert_eq!(data["_ab_source_file_url_2"], json!(5));
        assert!(data[FILE_URL].as_str().unwrap().ends_with("d.csv"));
        assert!(
            logs.contains("reading column 3 `a` as `a_3`, column 5 `_ab_source_file_url` as `_ab_source_file_url_2`"),
            "{logs}"
        );
        let catalog = FileSource
            .discover(&json!({"path": dir.path().join("d.csv")}))
            .unwrap();
        let props = catalog.streams[0].json_schema["properties"]
            .as_object()
            .unwrap();
        assert!(props.contains_key("a_3") && props.contains_key("_ab_source_file_url_2"));
    }

    #[test]
    fn a_row_longer_than_the_header_fails_with_its_line_and_a_shorter_one_has_nulls() {
        let dir = tempfile::tempdir().unwrap();
        // A trailing empty field holds nothing to lose.
        let (records, _) = read_one(dir.path(), "r.csv", "a,b,c\n1,2,3,\n4\n").unwrap();
        assert_eq!(records[0]["data"]["c"], json!(3));
        assert_eq!(records[1]["data"]["a"], json!(4));
        assert_eq!(records[1]["data"]["b"], Value::Null);
        assert!(records[1]["data"].as_object().unwrap().contains_key("c"));
        let err = read_one(dir.path(), "r.csv", "a,b\n1,2\n\"x\ny\",2\n3,4,5\n").unwrap_err();
        assert_eq!(err.failure_type, crate::protocol::FailureType::ConfigError);
        let path = dir.path().join("r.csv");
        assert_eq!(
            err.message,
            format!(
                "{} line 5: the row has 3 fields but the header names 2; the extra values have \
                 no column. Add their names to the header (line 1) or quote the field that holds \
                 the delimiter",
                path.display()
            )
        );
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
