//! `jsonl` and `csv`: one file per stream in a directory.
//!
//! Guarantees, the Airbyte way:
//! - `append` adds to `<dir>/[<namespace>/]<stream>.<ext>`; before a state is
//!   emitted back, every file written since the last one is flushed and
//!   fsynced.
//! - `overwrite` writes a hidden partial file and renames it over the old
//!   one only when the source reports the stream COMPLETE, so a failed sync
//!   leaves the old file whole. States that follow records of an unfinished
//!   overwrite stream are emitted back only once it is swapped in.
//! - A partial file never outlives the write: it is removed when the input
//!   ends first, on any error, when sluice stops the connector, and when
//!   sluice exits mid-write (a second Ctrl-C); see [`Unfinished`].
//!
//! `jsonl` writes each record's `data` exactly as the source sent it (no
//! parse); `csv` writes the columns of the stream's JSON schema, each value
//! as the source wrote it (a number keeps every digit). A record whose
//! `meta` reports changes the source made (a value nulled or truncated)
//! keeps them as Airbyte's destinations do: an `_airbyte_meta` field holding
//! that `meta` is added to the JSON Lines object, and to the CSV extra
//! column. Neither must ever drop a field or a change without a word.

use super::{parse_config, Builtin, BuiltinError, BuiltinResult, Kind, Output};
use crate::fsutil::Unfinished;
use crate::protocol::envelope::{self, MessageKind};
use crate::protocol::{
    ConfiguredAirbyteCatalog, ConnectorSpecification, DestinationSyncMode, Extra, LogLevel,
    Message, StreamDescriptor, StreamStatus, TraceKind,
};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

pub struct FileDestination {
    format: Format,
}

impl FileDestination {
    pub fn jsonl() -> Self {
        FileDestination {
            format: Format::Jsonl,
        }
    }

    pub fn csv() -> Self {
        FileDestination {
            format: Format::Csv,
        }
    }

    fn ext(&self) -> &'static str {
        match self.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

#[derive(Deserialize)]
struct Config {
    path: PathBuf,
}

/// The column CSV puts fields in that the stream's schema does not name.
const EXTRA_COLUMN: &str = "_airbyte_additional_properties";
/// The field that carries a record's `meta`, as Airbyte's destinations name it.
const META_FIELD: &str = "_airbyte_meta";
/// Where a record whose `data` is no object puts it.
const DATA_FIELD: &str = "_airbyte_data";

impl Builtin for FileDestination {
    fn name(&self) -> &'static str {
        match self.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    fn kind(&self) -> Kind {
        Kind::Destination
    }

    fn description(&self) -> &'static str {
        match self.format {
            Format::Jsonl => "One JSON Lines file per stream in a directory",
            Format::Csv => "One CSV file per stream in a directory",
        }
    }

    fn spec(&self) -> ConnectorSpecification {
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": format!("{} Destination Spec", self.ext().to_uppercase()),
                "type": "object",
                "required": ["path"],
                "additionalProperties": false,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "sluice_path": true,
                        "description": "Directory the stream files are written to; created if missing."}
                }
            }),
            supports_incremental: None,
            supported_destination_sync_modes: vec![
                DestinationSyncMode::Overwrite,
                DestinationSyncMode::Append,
            ],
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }

    fn check(&self, config: &Value) -> BuiltinResult<()> {
        let config: Config = parse_config(self.name(), config)?;
        std::fs::create_dir_all(&config.path).map_err(|e| {
            BuiltinError::config(format!("cannot create {}: {e}", config.path.display()))
        })?;
        let probe = config
            .path
            .join(format!(".sluice-check-{}", std::process::id()));
        File::create(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| {
                BuiltinError::config(format!("cannot write in {}: {e}", config.path.display()))
            })
    }

    fn write(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        input: &mut dyn BufRead,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        let config: Config = parse_config(self.name(), config)?;
        let mut files = StreamFiles::open(&config.path, catalog, self.format, self.ext())?;
        let mut line = Vec::with_capacity(64 * 1024);
        let mut held: Vec<Vec<u8>> = Vec::new();
        let mut row = Vec::with_capacity(1024);
        let mut n = 0u64;
        loop {
            n += 1;
            if n.is_multiple_of(4096) {
                out.check_cancel()?;
            }
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let text = line.trim_ascii_end();
            let Ok(env) = envelope::scan(text) else {
                continue;
            };
            match env.kind {
                MessageKind::Record => {
                    let r = env.record.expect("a RECORD has its fields");
                    let meta = meta_with_changes(text, r.data);
                    let f = files.get(r.namespace.as_deref(), &r.stream)?;
                    row.clear();
                    f.format_row(r.data, meta, &mut row)?;
                    f.write(&row)?;
                }
                MessageKind::State => {
                    files.sync_dirty()?;
                    let mut echo = text.to_vec();
                    echo.push(b'\n');
                    if files.overwrite_pending() {
                        held.push(echo);
                    } else {
                        out.raw(&echo)?;
                        out.flush()?;
                    }
                }
                MessageKind::Trace => {
                    if let Ok(Message::Trace(t)) = Message::parse(text) {
                        if let (TraceKind::StreamStatus, Some(s)) = (t.kind, t.stream_status) {
                            if s.status == StreamStatus::Complete {
                                files.complete(&s.stream_descriptor)?;
                                if !files.overwrite_pending() {
                                    for echo in held.drain(..) {
                                        out.raw(&echo)?;
                                    }
                                    out.flush()?;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        files.sync_dirty()?;
        for f in files.files.iter().filter(|f| f.unwritten > 0) {
            out.log(
                LogLevel::Warn,
                format!(
                    "{} record(s) of stream {} had fields or meta changes that its schema has \
                     no column for (it allows no other properties); {} does not hold them.",
                    f.unwritten,
                    f.name,
                    f.final_path.display()
                ),
            )?;
        }
        for name in files.abandon_incomplete()? {
            out.log(
                LogLevel::Warn,
                format!("Stream {name} did not complete; its previous file is left as it was."),
            )?;
        }
        out.flush()
    }
}

struct StreamFile {
    name: StreamDescriptor,
    mode: DestinationSyncMode,
    final_path: PathBuf,
    w: Option<BufWriter<File>>,
    /// Where overwrite writes until the stream completes; removed unless
    /// it is renamed into place.
    partial: Option<Unfinished>,
    dirty: bool,
    /// Written to since the stream started, in overwrite mode.
    overwrite_written: bool,
    complete: bool,
    /// CSV only: the schema's fields, then the extra column if any.
    columns: Option<Vec<String>>,
    extra_column: bool,
    /// CSV only: the position of each of the schema's fields.
    index: HashMap<String, usize>,
    /// CSV only: records with fields, or meta changes, no column could take.
    unwritten: u64,
}

impl StreamFile {
    /// The line or CSV row for a record's `data` and, when it reports
    /// changes, its `meta`.
    fn format_row(
        &mut self,
        data: &[u8],
        meta: Option<&RawValue>,
        row: &mut Vec<u8>,
    ) -> BuiltinResult<()> {
        let Some(columns) = &self.columns else {
            match meta {
                None => row.extend_from_slice(data),
                Some(meta) => with_meta(data, meta, row),
            }
            row.push(b'\n');
            return Ok(());
        };
        let not_json = |e: serde_json::Error| {
            BuiltinError::system(format!("a record of {} is not JSON: {e}", self.name))
        };
        let text = std::str::from_utf8(data)
            .map_err(|_| BuiltinError::system(format!("a record of {} is not UTF-8", self.name)))?;
        let fields = match raw_fields(text) {
            Ok(fields) => fields,
            Err(_) => vec![(
                Cow::Borrowed(DATA_FIELD),
                serde_json::from_str::<&RawValue>(text).map_err(not_json)?,
            )],
        };
        let named = columns.len() - usize::from(self.extra_column);
        let mut cells: Vec<Option<&RawValue>> = vec![None; named];
        let mut extra = Vec::new();
        for (key, value) in fields {
            match self.index.get(key.as_ref()) {
                Some(&i) => cells[i] = Some(value),
                None => extra.push((key, value)),
            }
        }
        if let Some(meta) = meta {
            extra.push((Cow::Borrowed(META_FIELD), meta));
        }
        let mut record = cells
            .into_iter()
            .map(cell)
            .collect::<serde_json::Result<Vec<Cow<str>>>>()
            .map_err(not_json)?;
        if self.extra_column {
            let mut object = Vec::new();
            if !extra.is_empty() {
                write_object(extra.iter().map(|(k, v)| (k.as_ref(), *v)), &mut object);
            }
            record.push(String::from_utf8(object).expect("JSON is UTF-8").into());
        } else if !extra.is_empty() {
            self.unwritten += 1;
        }
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(record.iter().map(|c| c.as_bytes()))
            .map_err(|e| BuiltinError::system(e.to_string()))?;
        row.extend_from_slice(
            &w.into_inner()
                .map_err(|e| BuiltinError::system(e.to_string()))?,
        );
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> BuiltinResult<()> {
        let w = self.w.as_mut().ok_or_else(|| {
            BuiltinError::system(format!("stream {} was already completed", self.name))
        })?;
        w.write_all(bytes)?;
        self.dirty = true;
        if self.mode == DestinationSyncMode::Overwrite {
            self.overwrite_written = true;
        }
        Ok(())
    }

    fn sync(&mut self) -> BuiltinResult<()> {
        if self.dirty {
            if let Some(w) = self.w.as_mut() {
                w.flush()?;
                w.get_ref().sync_data()?;
            }
            self.dirty = false;
        }
        Ok(())
    }
}

/// A CSV cell for a value as written: a string's text, nothing for null,
/// anything else (a number to its last digit, an object) as its JSON.
fn cell(v: Option<&RawValue>) -> serde_json::Result<Cow<'_, str>> {
    let Some(text) = v.map(RawValue::get) else {
        return Ok(Cow::Borrowed(""));
    };
    Ok(match text.as_bytes()[0] {
        b'n' => Cow::Borrowed(""),
        b'"' if !text.contains('\\') => Cow::Borrowed(&text[1..text.len() - 1]),
        b'"' => Cow::Owned(serde_json::from_str::<String>(text)?),
        _ => Cow::Borrowed(text),
    })
}

/// `data` (an object, else wrapped in one as `_airbyte_data`) with an
/// `_airbyte_meta` field added, every value as written.
fn with_meta(data: &[u8], meta: &RawValue, row: &mut Vec<u8>) {
    let data = data.trim_ascii();
    if data.first() == Some(&b'{') {
        let body = &data[..data.len() - 1];
        if body[1..].trim_ascii().is_empty() {
            row.push(b'{');
        } else {
            row.extend_from_slice(body);
            row.push(b',');
        }
    } else {
        row.extend_from_slice(format!("{{\"{DATA_FIELD}\":").as_bytes());
        row.extend_from_slice(data);
        row.push(b',');
    }
    row.extend_from_slice(format!("\"{META_FIELD}\":").as_bytes());
    row.extend_from_slice(meta.get().as_bytes());
    row.push(b'}');
}

/// A RECORD line's `meta` as written, when it reports changes to the data.
/// Only a line that spells `meta` (or escapes a character) outside its
/// `data` is parsed for it, so the common record costs a short scan.
fn meta_with_changes<'a>(line: &'a [u8], data: &[u8]) -> Option<&'a RawValue> {
    let outside = match line.as_ptr_range().contains(&data.as_ptr()) {
        true => {
            let start = data.as_ptr() as usize - line.as_ptr() as usize;
            [&line[..start], &line[start + data.len()..]]
        }
        false => [line, &[][..]],
    };
    let spelled = outside
        .iter()
        .any(|part| memchr::memmem::find(part, b"meta").is_some() || part.contains(&b'\\'));
    if !spelled {
        return None;
    }
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        record: Record<'a>,
    }
    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(borrow, default)]
        meta: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Changes {
        #[serde(default)]
        changes: Option<Vec<serde::de::IgnoredAny>>,
    }
    let line: Line = serde_json::from_str(std::str::from_utf8(line).ok()?).ok()?;
    let meta = line.record.meta?;
    let changes = serde_json::from_str::<Changes>(meta.get()).ok()?.changes;
    changes.is_some_and(|c| !c.is_empty()).then_some(meta)
}

/// An object key, borrowed from the text unless it has escapes.
pub(super) struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The fields of a JSON object in order, each value exactly as written:
/// nothing is re-encoded, so `1.50` stays `1.50` and a number keeps every
/// digit. An error for anything but one object.
pub(super) fn raw_fields(json: &str) -> serde_json::Result<Vec<(Cow<'_, str>, &RawValue)>> {
    struct Fields;
    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = Vec::new();
            while let Some(Key(key)) = map.next_key()? {
                fields.push((key, map.next_value()?));
            }
            Ok(fields)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let fields = (&mut de).deserialize_map(Fields)?;
    de.end()?;
    Ok(fields)
}

/// Writes `{"key":value,...}`, each value as written.
pub(super) fn write_object<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a RawValue)>,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("a string is JSON");
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
}

struct StreamFiles {
    files: Vec<StreamFile>,
    index: HashMap<StreamDescriptor, usize>,
}

/// A name safe as one path component.
fn component(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

impl StreamFiles {
    fn open(
        dir: &Path,
        catalog: &ConfiguredAirbyteCatalog,
        format: Format,
        ext: &str,
    ) -> BuiltinResult<StreamFiles> {
        let mut files = Vec::new();
        let mut index = HashMap::new();
        let mut paths = HashMap::new();
        for configured in &catalog.streams {
            let name = configured.stream.descriptor();
            let mut parent = dir.to_path_buf();
            if let Some(ns) = &name.namespace {
                parent.push(component(ns));
            }
            std::fs::create_dir_all(&parent).map_err(|e| {
                BuiltinError::config(format!("cannot create {}: {e}", parent.display()))
            })?;
            let file_name = format!("{}.{ext}", component(&name.name));
            let final_path = parent.join(&file_name);
            if let Some(other) = paths.insert(final_path.clone(), name.clone()) {
                return Err(BuiltinError::config(format!(
                    "streams {other} and {name} would both be written to {}",
                    final_path.display()
                )));
            }
            // A stream whose older generations go once this one lands (a
            // refresh: minimum_generation_id == generation_id) is written
            // like an overwrite: to a partial file that replaces the old one
            // at the end, whatever its sync mode.
            let mode = if configured.truncates() {
                DestinationSyncMode::Overwrite
            } else {
                configured.destination_sync_mode
            };
            let (columns, extra_column, column_index) = match format {
                Format::Jsonl => (None, false, HashMap::new()),
                Format::Csv => {
                    let (c, extra) = csv_columns(&configured.stream.json_schema);
                    let named = c.len() - usize::from(extra);
                    let index = c[..named].iter().cloned().zip(0..).collect();
                    (Some(c), extra, index)
                }
            };
            let (w, partial) = match mode {
                DestinationSyncMode::Append => {
                    let existed = final_path.metadata().map(|m| m.len() > 0).unwrap_or(false);
                    if existed {
                        if let Some(cols) = &columns {
                            check_header(&final_path, cols, &name)?;
                        }
                    }
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&final_path)?;
                    let mut w = BufWriter::with_capacity(256 * 1024, f);
                    if !existed {
                        write_header(&mut w, columns.as_deref())?;
                    }
                    (w, None)
                }
                DestinationSyncMode::Overwrite => {
                    let partial = Unfinished::new(parent.join(format!(".{file_name}.partial")));
                    let f = File::create(partial.path())?;
                    let mut w = BufWriter::with_capacity(256 * 1024, f);
                    write_header(&mut w, columns.as_deref())?;
                    (w, Some(partial))
                }
                other => {
                    return Err(BuiltinError::config(format!(
                        "stream {name}: {ext} supports overwrite and append, not {}",
                        other.as_str()
                    )))
                }
            };
            index.insert(name.clone(), files.len());
            files.push(StreamFile {
                name,
                mode,
                final_path,
                w: Some(w),
                partial,
                dirty: true,
                overwrite_written: false,
                complete: false,
                index: column_index,
                unwritten: 0,
                columns,
                extra_column,
            });
        }
        Ok(StreamFiles { files, index })
    }

    fn get(&mut self, namespace: Option<&str>, stream: &str) -> BuiltinResult<&mut StreamFile> {
        // Streams are few; a linear scan beats building a key per record.
        let found = self
            .files
            .iter()
            .position(|f| f.name.name == stream && f.name.namespace.as_deref() == namespace);
        match found {
            Some(i) => Ok(&mut self.files[i]),
            None => Err(BuiltinError::system(format!(
                "a record for stream `{}` which is not in the catalog",
                StreamDescriptor::new(namespace, stream)
            ))),
        }
    }

    fn sync_dirty(&mut self) -> BuiltinResult<()> {
        self.files.iter_mut().try_for_each(StreamFile::sync)
    }

    fn overwrite_pending(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.overwrite_written && !f.complete)
    }

    /// Swaps a completed overwrite stream's file in.
    fn complete(&mut self, name: &StreamDescriptor) -> BuiltinResult<()> {
        let Some(&i) = self.index.get(name) else {
            return Ok(());
        };
        let f = &mut self.files[i];
        if f.complete {
            return Ok(());
        }
        f.sync()?;
        if let Some(partial) = f.partial.take() {
            f.w = None;
            std::fs::rename(partial.path(), &f.final_path)?;
            partial.finish();
            if let Some(parent) = f.final_path.parent() {
                crate::fsutil::sync_dir(parent)?;
            }
        }
        f.complete = true;
        Ok(())
    }

    /// Removes the partial files of overwrite streams that never completed;
    /// returns their names.
    fn abandon_incomplete(&mut self) -> BuiltinResult<Vec<String>> {
        let mut names = Vec::new();
        for f in &mut self.files {
            if let Some(partial) = f.partial.take() {
                f.w = None;
                drop(partial);
                names.push(f.name.to_string());
            }
        }
        Ok(names)
    }
}

/// The CSV columns for a stream: its schema's properties in order, and
/// whether an extra column holds fields the schema does not name.
fn csv_columns(schema: &Value) -> (Vec<String>, bool) {
    let mut columns: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    let extra = !closed || columns.is_empty();
    if extra {
        columns.push(EXTRA_COLUMN.into());
    }
    (columns, extra)
}

fn write_header(w: &mut impl Write, columns: Option<&[String]>) -> BuiltinResult<()> {
    if let Some(columns) = columns {
        let mut cw = csv::WriterBuilder::new().from_writer(Vec::new());
        cw.write_record(columns)
            .map_err(|e| BuiltinError::system(e.to_string()))?;
        w.write_all(
            &cw.into_inner()
                .map_err(|e| BuiltinError::system(e.to_string()))?,
        )?;
    }
    Ok(())
}

fn check_header(path: &Path, columns: &[String], name: &StreamDescriptor) -> BuiltinResult<()> {
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| BuiltinError::system(format!("cannot read {}: {e}", path.display())))?;
    let found: Vec<String> = r
        .headers()
        .map_err(|e| BuiltinError::system(format!("cannot read {}: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    if found != columns {
        return Err(BuiltinError::config(format!(
            "{} has the columns ({}) but stream {name} now has ({}); \
             sync with --destination-sync-mode overwrite to rewrite it",
            path.display(),
            found.join(", "),
            columns.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AirbyteStream, ConfiguredAirbyteStream, SyncMode};

    fn catalog(mode: DestinationSyncMode, schema: Value) -> ConfiguredAirbyteCatalog {
        ConfiguredAirbyteCatalog {
            streams: vec![ConfiguredAirbyteStream {
                stream: AirbyteStream::new("users", schema),
                sync_mode: SyncMode::FullRefresh,
                cursor_field: vec![],
                destination_sync_mode: mode,
                destination_object_name: None,
                primary_key: vec![],
                generation_id: None,
                minimum_generation_id: None,
                sync_id: None,
                include_files: None,
                extra: Extra::new(),
            }],
            extra: Extra::new(),
        }
    }

    fn run(
        dest: &FileDestination,
        dir: &Path,
        cat: &ConfiguredAirbyteCatalog,
        input: &str,
    ) -> String {
        let (mut out, buf) = Output::capture();
        dest.write(
            &json!({"path": dir}),
            cat,
            &mut std::io::Cursor::new(input.as_bytes().to_vec()),
            &mut out,
        )
        .unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text
    }

    const REC1: &str = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"name":"a, b"},"emitted_at":1}}"#;
    const REC2: &str = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":2,"extra":[1]},"emitted_at":1}}"#;
    const STATE: &str = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"c":1}}}}"#;
    const COMPLETE: &str = r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"users"},"status":"COMPLETE"}}}"#;

    #[test]
    fn append_writes_data_and_echoes_states_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(DestinationSyncMode::Append, json!({}));
        let input = format!("{REC1}\n{STATE}\n{REC2}\n");
        let echoed = run(&FileDestination::jsonl(), dir.path(), &cat, &input);
        assert_eq!(
            echoed.lines().filter(|l| l.contains("\"STATE\"")).count(),
            1
        );
        run(&FileDestination::jsonl(), dir.path(), &cat, &input);
        let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"id\":1,\"name\":\"a, b\"}\n{\"id\":2,\"extra\":[1]}\n".repeat(2)
        );
    }

    #[test]
    fn overwrite_swaps_in_only_a_completed_stream() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.jsonl");
        std::fs::write(&file, "old\n").unwrap();
        let cat = catalog(DestinationSyncMode::Overwrite, json!({}));
        // Not completed: the old file stays, the state is not confirmed.
        let echoed = run(
            &FileDestination::jsonl(),
            dir.path(),
            &cat,
            &format!("{REC1}\n{STATE}\n"),
        );
        assert!(!echoed.contains("\"STATE\""), "{echoed}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no partial file left"
        );
        // Completed: swapped in, and the held state follows.
        let echoed = run(
            &FileDestination::jsonl(),
            dir.path(),
            &cat,
            &format!("{REC1}\n{STATE}\n{REC2}\n{COMPLETE}\n"),
        );
        assert!(echoed.contains("\"STATE\""), "{echoed}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\"id\":1,\"name\":\"a, b\"}\n{\"id\":2,\"extra\":[1]}\n"
        );
    }

    /// The names in `dir`, hidden ones too.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_or_stopped_overwrite_leaves_no_partial_file() {
        const GHOST: &str =
            r#"{"type":"RECORD","record":{"stream":"ghost","data":{},"emitted_at":1}}"#;
        const TRACE_ERROR: &str = r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"boom","failure_type":"system_error"}}}"#;
        let many = format!("{REC1}\n").repeat(5000);
        let cases = [
            (
                "an error while writing",
                format!("{REC1}\n{STATE}\n{GHOST}\n{REC2}\n"),
                false,
                "not in the catalog",
            ),
            ("stopped by sluice", many.clone(), true, "stopped by sluice"),
            (
                "a source error, then the end of input",
                format!("{REC1}\n{STATE}\n{TRACE_ERROR}\n"),
                false,
                "",
            ),
        ];
        for format in [FileDestination::jsonl(), FileDestination::csv()] {
            for (what, input, cancel, error) in &cases {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join(format!("users.{}", format.ext()));
                std::fs::write(&file, "old\n").unwrap();
                let cat = catalog(DestinationSyncMode::Overwrite, json!({}));
                let (mut out, _) = Output::capture();
                out.cancel
                    .store(*cancel, std::sync::atomic::Ordering::Relaxed);
                let result = format.write(
                    &json!({"path": dir.path()}),
                    &cat,
                    &mut std::io::Cursor::new(input.as_bytes().to_vec()),
                    &mut out,
                );
                match result {
                    Err(e) => assert!(e.message.contains(error), "{what}: {}", e.message),
                    Ok(()) => assert!(error.is_empty(), "{what}: no error"),
                }
                assert_eq!(
                    names(dir.path()),
                    [format!("users.{}", format.ext())],
                    "{what}"
                );
                assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\n", "{what}");
            }
        }
    }

    #[test]
    fn csv_uses_schema_columns_and_keeps_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let schema = json!({"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}}});
        let cat = catalog(DestinationSyncMode::Append, schema);
        run(
            &FileDestination::csv(),
            dir.path(),
            &cat,
            &format!("{REC1}\n{REC2}\n"),
        );
        let text = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
        assert_eq!(
            text,
            "id,name,_airbyte_additional_properties\n1,\"a, b\",\n2,,\"{\"\"extra\"\":[1]}\"\n"
        );
        // Appending with other columns is refused with what to do.
        let other = catalog(
            DestinationSyncMode::Append,
            json!({"type":"object","properties":{"id":{"type":"integer"}}}),
        );
        let (mut out, _) = Output::capture();
        let err = FileDestination::csv()
            .write(
                &json!({"path": dir.path()}),
                &other,
                &mut std::io::Cursor::new(vec![]),
                &mut out,
            )
            .unwrap_err();
        assert!(
            err.message.contains("--destination-sync-mode overwrite"),
            "{}",
            err.message
        );
    }

    #[test]
    fn meta_changes_are_kept_and_values_written_as_sent() {
        // A nulled value, a record with no changes, one whose `meta` says
        // none, and a stream named `meta`.
        const NULLED: &str = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":3,"n":null},"emitted_at":1,"meta":{"changes":[{"field":"n","change":"NULLED","reason":"SOURCE_SERIALIZATION_ERROR"}]}}}"#;
        const BIG: &str = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":123456789012345678901234,"n":1.50,"s":"a\"b"},"emitted_at":1}}"#;
        const NONE: &str = r#"{"type":"RECORD","record":{"stream":"users","data":{"id":4},"emitted_at":1,"meta":{"changes":[]}}}"#;
        const META: &str =
            r#"{"type":"RECORD","record":{"stream":"meta","data":{},"emitted_at":1}}"#;
        const WANT: &str = r#"{"changes":[{"field":"n","change":"NULLED","reason":"SOURCE_SERIALIZATION_ERROR"}]}"#;
        let input = format!("{NULLED}\n{BIG}\n{NONE}\n");
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(DestinationSyncMode::Append, json!({}));
        run(&FileDestination::jsonl(), dir.path(), &cat, &input);
        let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"id\":3,\"n\":null,\"_airbyte_meta\":{WANT}}}\n\
                 {{\"id\":123456789012345678901234,\"n\":1.50,\"s\":\"a\\\"b\"}}\n{{\"id\":4}}\n"
            )
        );
        let mut row = Vec::new();
        let meta: &RawValue = serde_json::from_str(WANT).unwrap();
        with_meta(b" {  } ", meta, &mut row);
        with_meta(b"[1]", meta, &mut row);
        assert_eq!(
            String::from_utf8(row).unwrap(),
            format!(
                "{{\"_airbyte_meta\":{WANT}}}{{\"_airbyte_data\":[1],\"_airbyte_meta\":{WANT}}}"
            )
        );
        let env = envelope::scan(META.as_bytes()).unwrap();
        assert!(meta_with_changes(META.as_bytes(), env.record.unwrap().data).is_none());

        let schema = json!({"type":"object","properties":{"id":{"type":"integer"},"n":{"type":"number"},"s":{"type":"string"}}});
        let cat = catalog(DestinationSyncMode::Append, schema);
        run(&FileDestination::csv(), dir.path(), &cat, &input);
        let text = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
        assert_eq!(
            text,
            format!(
                "id,n,s,_airbyte_additional_properties\n\
                 3,,,\"{{\"\"_airbyte_meta\"\":{}}}\"\n\
                 123456789012345678901234,1.50,\"a\"\"b\",\n4,,,\n",
                WANT.replace('"', "\"\"")
            )
        );
    }

    #[test]
    fn csv_says_what_a_closed_schema_had_no_column_for() {
        let dir = tempfile::tempdir().unwrap();
        let schema = json!({"type":"object","additionalProperties":false,"properties":{"id":{"type":"integer"}}});
        let cat = catalog(DestinationSyncMode::Append, schema);
        let echoed = run(
            &FileDestination::csv(),
            dir.path(),
            &cat,
            &format!("{REC1}\n{REC2}\n"),
        );
        let text = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
        assert_eq!(text, "id\n1\n2\n");
        assert!(
            echoed.contains("2 record(s) of stream users had fields or meta changes"),
            "{echoed}"
        );
    }

    #[test]
    fn odd_stream_names_stay_inside_the_directory() {
        assert_eq!(component("a/b"), "a_b");
        assert_eq!(component(".."), "_..");
        assert_eq!(component("usérs x"), "usérs x");
    }
}
