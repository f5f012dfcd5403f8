//! The destination side: Airbyte's Destinations V2 final tables, loaded
//! with COPY.
//!
//! Two threads share the work. This one reads the protocol lines and turns
//! each record into a row for COPY, typed by the column it lands in (a
//! value that does not fit becomes NULL and a change in `_airbyte_meta`);
//! the writer thread streams those rows into PostgreSQL and owns the
//! transactions, so parsing and loading overlap. Rows go in COPY's binary
//! format, which the server loads without parsing text; a row with a value
//! of a rarer shape (an exponent, a BC date...) goes as COPY text instead,
//! and so does every row of a table whose columns have types sluice did
//! not choose.
//!
//! Guarantees:
//! - A state is emitted back only after the transaction holding every
//!   record before it has committed.
//! - `overwrite` loads a new table and swaps it in (drop and rename in one
//!   transaction) when the stream completes; until then the old table is
//!   untouched and the states are held. A leftover new table of a killed
//!   run is dropped by the next one.
//! - `append` copies into the final table inside the checkpoint's
//!   transaction; `append_dedup` copies into a temporary staging table and
//!   merges it by primary key in that same transaction (newest cursor wins,
//!   `_ab_cdc_deleted_at` deletes), so a rerun of records already committed
//!   leaves no duplicate.
//! - A refresh (`minimum_generation_id == generation_id`) replaces the
//!   table whatever the mode: `append` loads a new table as `overwrite`
//!   does, `append_dedup` merges into a new table; either is swapped in
//!   when the stream completes, so a failed refresh changes nothing.

use super::binary::{self, Outcome};
use super::types::ColType;
use super::{ident, Config, Conn};
use crate::connector::builtin::{BuiltinError, BuiltinResult, Output};
use crate::protocol::envelope::{self, MessageKind};
use crate::protocol::{
    ConfiguredAirbyteCatalog, DestinationSyncMode, LogLevel, Message, RecordMeta, RecordMetaChange,
    StreamStatus, TraceKind,
};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::Row;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::mpsc::{Receiver, SyncSender};

/// The column Airbyte's CDC sources mark deleted rows with.
const CDC_DELETED: &str = "_ab_cdc_deleted_at";
/// The column a record goes to whole when its stream's schema names no field.
const WHOLE_RECORD: &str = "_airbyte_data";
/// Bytes of rows sent to the writer at a time.
const BATCH_BYTES: usize = 1 << 20;

/// What a stream is written to, as both threads need it.
struct Plan {
    /// The stream as records name it.
    stream: crate::protocol::StreamDescriptor,
    name: String,
    schema: String,
    table: String,
    mode: DestinationSyncMode,
    /// The stream's fields: column names, in the schema's order.
    fields: Vec<String>,
    /// The type of each field from the stream's JSON schema.
    schema_types: Vec<ColType>,
    primary_key: Vec<String>,
    cursor: Option<String>,
    generation_id: i64,
    sync_id: Option<i64>,
    /// The schema names no field: the record goes whole into one column.
    whole: bool,
    /// append_dedup of a refresh: deduplicated into a new table that
    /// replaces the final one when the stream completes.
    refresh: bool,
}

impl Plan {
    fn final_table(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.table))
    }

    /// A short name derived from the table's, for the tables and indexes
    /// sluice keeps beside it: stable, so a rerun finds a killed run's.
    fn side_name(&self, what: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.schema.bytes().chain([0]).chain(self.table.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("_sluice_{what}_{h:016x}")
    }
}

fn plans(config: &Config, catalog: &ConfiguredAirbyteCatalog) -> BuiltinResult<Vec<Plan>> {
    let mut out: Vec<Plan> = Vec::new();
    for c in &catalog.streams {
        let s = &c.stream;
        let name = s.descriptor().to_string();
        let schema = s
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_schema().to_string());
        let table = c
            .destination_object_name
            .clone()
            .unwrap_or_else(|| s.name.clone());
        let props = s.json_schema.get("properties").and_then(Value::as_object);
        let (fields, schema_types): (Vec<String>, Vec<ColType>) = props
            .map(|p| {
                p.iter()
                    .filter(|(k, _)| !k.starts_with("_airbyte_"))
                    .map(|(k, v)| (k.clone(), ColType::from_schema(v)))
                    .unzip()
            })
            .unwrap_or_default();
        // A stream whose schema names no field keeps each record whole.
        let whole = fields.is_empty();
        let (fields, schema_types) = if whole {
            (vec![WHOLE_RECORD.to_string()], vec![ColType::Jsonb])
        } else {
            (fields, schema_types)
        };
        if c.destination_sync_mode == DestinationSyncMode::AppendDedup && c.primary_key.is_empty() {
            return Err(BuiltinError::config(format!(
                "stream `{name}` has no primary key, which append_dedup needs"
            )));
        }
        let primary_key: Vec<String> = c.primary_key.iter().map(|path| path.join(".")).collect();
        for k in &primary_key {
            if !fields.contains(k) {
                return Err(BuiltinError::config(format!(
                    "stream `{name}`: the primary key `{k}` is not a field of its schema"
                )));
            }
        }
        let cursor = c
            .cursor_field
            .first()
            .filter(|f| fields.contains(f))
            .cloned();
        if !matches!(
            c.destination_sync_mode,
            DestinationSyncMode::Overwrite
                | DestinationSyncMode::Append
                | DestinationSyncMode::AppendDedup
        ) {
            return Err(BuiltinError::config(format!(
                "stream `{name}`: postgres writes overwrite, append and append_dedup, not {}",
                c.destination_sync_mode.as_str()
            )));
        }
        // A refresh replaces the table: an append becomes an overwrite, an
        // append_dedup deduplicates into a new table.
        let mode = match c.destination_sync_mode {
            DestinationSyncMode::Append if c.truncates() => DestinationSyncMode::Overwrite,
            m => m,
        };
        let plan = Plan {
            stream: s.descriptor(),
            name,
            schema,
            table,
            mode,
            fields,
            schema_types,
            primary_key,
            cursor,
            generation_id: c.generation_id.unwrap_or(0),
            sync_id: c.sync_id,
            whole,
            refresh: mode == DestinationSyncMode::AppendDedup && c.truncates(),
        };
        if let Some(other) = out
            .iter()
            .find(|p| p.schema == plan.schema && p.table == plan.table)
        {
            return Err(BuiltinError::config(format!(
                "streams `{}` and `{}` would both be written to {}",
                other.name,
                plan.name,
                plan.final_table()
            )));
        }
        out.push(plan);
    }
    Ok(out)
}

/// What the reading thread asks of the writer, in stream order.
enum Op {
    /// Rows for stream `stream`, in COPY's binary format or as COPY text.
    Rows {
        stream: usize,
        binary: bool,
        rows: Vec<u8>,
    },
    /// A STATE line to emit back once what came before it is committed.
    State(Vec<u8>),
    Complete(usize),
}

pub(super) fn write(
    config: &Config,
    catalog: &ConfiguredAirbyteCatalog,
    input: &mut dyn BufRead,
    out: &mut Output,
) -> BuiltinResult<()> {
    let plans = plans(config, catalog)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Op>(4);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Vec<Columns>>(1);
    std::thread::scope(|scope| {
        let plans = &plans;
        let writer = std::thread::Builder::new()
            .name("sluice-postgres-writer".into())
            .spawn_scoped(scope, move || {
                super::block_on(writer(config, plans, rx, ready_tx, out))?
            })
            .map_err(|e| BuiltinError::system(format!("cannot start a thread: {e}")))?;
        let read = match ready_rx.recv() {
            Ok(columns) => read_input(input, plans, columns, &tx),
            // The writer failed to set up; its error says why.
            Err(_) => Ok(()),
        };
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(BuiltinError::system("the postgres writer crashed")));
        // A failed writer closes the channel under the reader: its error
        // is the cause.
        written.and(read)
    })
}

/// Reads the protocol lines; sends rows, states and completions in order.
fn read_input(
    input: &mut dyn BufRead,
    plans: &[Plan],
    columns: Vec<Columns>,
    tx: &SyncSender<Op>,
) -> BuiltinResult<()> {
    let mut encoders: Vec<Encoder> = plans
        .iter()
        .zip(columns)
        .map(|(p, c)| Encoder::new(p, c))
        .collect();
    let mut bufs: Vec<Batch> = plans.iter().map(|_| Batch::default()).collect();
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.trim_ascii_end();
        if let Some(r) = std::str::from_utf8(text)
            .ok()
            .and_then(|t| one_pass(t, plans, &encoders))
        {
            let i = r.plan;
            encoders[i].set_extracted_at(r.emitted_at);
            let changes = source_changes(r.meta.map(RawValue::get));
            encoders[i].encode_row(&r.slots, &changes, &mut bufs[i]);
            bufs[i].send(i, BATCH_BYTES, tx)?;
            continue;
        }
        // Anything else (states, traces, odd or broken lines) the slower
        // way, which also words the errors.
        let Ok(env) = envelope::scan(text) else {
            continue;
        };
        match env.kind {
            MessageKind::Record => {
                let r = env.record.expect("a RECORD has its fields");
                let i = plan_of(plans, r.namespace.as_deref(), &r.stream).ok_or_else(|| {
                    BuiltinError::system(format!(
                        "a record for stream `{}` which is not in the catalog",
                        crate::protocol::StreamDescriptor::new(r.namespace.as_deref(), &r.stream)
                    ))
                })?;
                encoders[i].set_extracted_at(emitted_at(text, r.data));
                let changes = serde_json::from_slice::<MetaOf>(text)
                    .ok()
                    .and_then(|m| m.record.meta)
                    .map_or_else(Vec::new, |m| m.changes);
                encoders[i].row(r.data, &changes, &mut bufs[i])?;
                bufs[i].send(i, BATCH_BYTES, tx)?;
            }
            MessageKind::State => {
                for (i, b) in bufs.iter_mut().enumerate() {
                    b.send(i, 1, tx)?;
                }
                let mut echo = text.to_vec();
                echo.push(b'\n');
                tx.send(Op::State(echo)).map_err(writer_stopped)?;
            }
            MessageKind::Trace => {
                let Ok(Message::Trace(t)) = Message::parse(text) else {
                    continue;
                };
                let (TraceKind::StreamStatus, Some(s)) = (t.kind, t.stream_status) else {
                    continue;
                };
                if s.status != StreamStatus::Complete {
                    continue;
                }
                let d = &s.stream_descriptor;
                if let Some(i) = plan_of(plans, d.namespace.as_deref(), &d.name) {
                    bufs[i].send(i, 1, tx)?;
                    tx.send(Op::Complete(i)).map_err(writer_stopped)?;
                }
            }
            _ => {}
        }
    }
    for (i, b) in bufs.iter_mut().enumerate() {
        b.send(i, 1, tx)?;
    }
    Ok(())
}

/// The reader's error when the writer thread has gone (its own error
/// says why).
fn writer_stopped<T>(_: T) -> BuiltinError {
    BuiltinError::system("the postgres writer stopped")
}

/// A stream's rows on their way to the writer, in either format.
#[derive(Default)]
struct Batch {
    binary: Vec<u8>,
    text: Vec<u8>,
}

impl Batch {
    /// Sends stream `i`'s rows of either format once they reach `min` bytes
    /// (1: whatever there is).
    fn send(&mut self, i: usize, min: usize, tx: &SyncSender<Op>) -> BuiltinResult<()> {
        for (binary, rows) in [(true, &mut self.binary), (false, &mut self.text)] {
            if !rows.is_empty() && rows.len() >= min {
                let rows = std::mem::replace(rows, Vec::with_capacity(rows.capacity()));
                tx.send(Op::Rows {
                    stream: i,
                    binary,
                    rows,
                })
                .map_err(writer_stopped)?;
            }
        }
        Ok(())
    }
}

/// The changes a source made to a record (`record.meta.changes`), which
/// `_airbyte_meta` keeps before the destination's own.
fn source_changes(meta: Option<&str>) -> Vec<RecordMetaChange> {
    meta.and_then(|m| serde_json::from_str::<RecordMeta>(m).ok())
        .map_or_else(Vec::new, |m| m.changes)
}

/// A RECORD line's `record.meta`, read the careful way.
#[derive(serde::Deserialize)]
struct MetaOf {
    record: RecordMetaOf,
}

#[derive(serde::Deserialize)]
struct RecordMetaOf {
    #[serde(default)]
    meta: Option<RecordMeta>,
}

/// A RECORD line read in one pass: the plan of the stream it names, its
/// `emitted_at`, and its data split into that stream's columns.
struct OnePass<'a> {
    plan: usize,
    emitted_at: Option<i64>,
    slots: Vec<Option<&'a RawValue>>,
    /// The record's `meta`, when it has one.
    meta: Option<&'a RawValue>,
}

/// Reads a RECORD line whose envelope serde can borrow (no escaped key or
/// name) in one pass, its data straight into the columns when the stream's
/// name comes before the data, as every connector writes it. `None` for
/// anything else (other messages, broken lines, a stream not in the
/// catalog), which the caller then reads the careful way.
fn one_pass<'a>(line: &'a str, plans: &[Plan], encoders: &[Encoder]) -> Option<OnePass<'a>> {
    let mut de = serde_json::Deserializer::from_str(line);
    let seed = LineSeed {
        plans,
        encoders,
        record: false,
    };
    let r = seed.deserialize(&mut de).ok()??;
    de.end().ok()?;
    Some(r)
}

fn plan_of(plans: &[Plan], namespace: Option<&str>, stream: &str) -> Option<usize> {
    plans
        .iter()
        .position(|p| p.table_stream_matches(namespace, stream))
}

/// Reads a protocol line's top object, or (`record`) its `record` object.
#[derive(Clone, Copy)]
struct LineSeed<'p> {
    plans: &'p [Plan],
    encoders: &'p [Encoder],
    record: bool,
}

/// A record's data: split while reading it, or kept whole to split later.
enum DataRead<'a> {
    Split {
        plan: usize,
        slots: Vec<Option<&'a RawValue>>,
    },
    Raw(&'a RawValue),
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Option<OnePass<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Option<OnePass<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.record {
            "a record"
        } else {
            "a protocol message"
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if self.record {
            self.record_object(map)
        } else {
            self.top_object(map)
        }
    }
}

impl LineSeed<'_> {
    fn top_object<'de, A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<OnePass<'de>>, A::Error> {
        let once = || serde::de::Error::custom("a key twice");
        let mut is_record = None;
        let mut record = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "type" if is_record.is_none() => {
                    let kind = map.next_value::<&'de str>()?;
                    if kind != "RECORD" {
                        return Ok(None);
                    }
                    is_record = Some(true);
                }
                "record" if record.is_none() => {
                    record = Some(map.next_value_seed(LineSeed {
                        record: true,
                        ..self
                    })?);
                }
                "type" | "record" => return Err(once()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(is_record.and(record.flatten()))
    }

    fn record_object<'de, A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<OnePass<'de>>, A::Error> {
        let once = || serde::de::Error::custom("a key twice");
        let mut stream: Option<&'de str> = None;
        let mut namespace: Option<Option<&'de str>> = None;
        let mut emitted_at: Option<&'de RawValue> = None;
        let mut meta: Option<&'de RawValue> = None;
        let mut data: Option<DataRead<'de>> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "stream" if stream.is_none() => stream = Some(map.next_value()?),
                "namespace" if namespace.is_none() => namespace = Some(map.next_value()?),
                "emitted_at" if emitted_at.is_none() => emitted_at = Some(map.next_value()?),
                "meta" if meta.is_none() => meta = Some(map.next_value()?),
                "data" if data.is_none() => {
                    let plan = stream.and_then(|s| plan_of(self.plans, namespace.flatten(), s));
                    data = Some(match plan {
                        Some(plan) if !self.encoders[plan].whole => {
                            let mut slots = vec![None; self.encoders[plan].types.len()];
                            map.next_value_seed(Fields {
                                index: &self.encoders[plan].index,
                                slots: &mut slots,
                            })?;
                            DataRead::Split { plan, slots }
                        }
                        _ => DataRead::Raw(map.next_value()?),
                    });
                }
                "stream" | "namespace" | "emitted_at" | "meta" | "data" => return Err(once()),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (Some(stream), Some(data)) = (stream, data) else {
            return Ok(None);
        };
        let Some(plan) = plan_of(self.plans, namespace.flatten(), stream) else {
            return Ok(None);
        };
        let slots = match data {
            DataRead::Split { plan: p, slots } if p == plan => slots,
            // Split for another stream (its namespace came after the data).
            DataRead::Split { .. } => return Ok(None),
            DataRead::Raw(raw) => self.encoders[plan].split(raw.get()),
        };
        Ok(Some(OnePass {
            plan,
            emitted_at: emitted_at.and_then(|t| millis(t.get())),
            slots,
            meta,
        }))
    }
}

/// `emitted_at` as whole milliseconds; not a plausible time (before 1970,
/// after 9999) is None.
fn millis(raw: &str) -> Option<i64> {
    let ms = match raw.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => raw.parse::<f64>().ok().filter(|f| f.is_finite())?.trunc() as i64,
    };
    (0..253_402_300_800_000).contains(&ms).then_some(ms)
}

impl Plan {
    /// Whether a record's stream is this plan's. Streams are few: a linear
    /// scan beats building a key per record.
    fn table_stream_matches(&self, namespace: Option<&str>, stream: &str) -> bool {
        self.stream.name == stream && self.stream.namespace.as_deref() == namespace
    }
}

/// One stream's tables as the writer knows them.
struct Target {
    /// `COPY <load table> (<columns>) FROM STDIN`, as text and as binary.
    copy_text: String,
    copy_binary: String,
    /// Where rows are loaded: the final table (append), a new table
    /// (overwrite) or a staging table (append_dedup).
    load: String,
    /// Overwrite: rows were loaded and the new table is not swapped in yet.
    pending: bool,
    complete: bool,
    /// append_dedup: the staging table holds rows to merge.
    staged: bool,
    /// append_dedup: the merge statements.
    merge_sql: Option<String>,
    /// Overwrite, refresh: the new table that replaces the final one when
    /// the stream completes.
    swap: Option<Swap>,
}

/// A new table and the statements that swap it in for the final one.
struct Swap {
    new: String,
    sql: String,
}

impl Target {
    /// Rows are copied into `load` (Airbyte's columns, then `fields`, a
    /// list each with a leading comma); `merge_sql` merges them from there;
    /// `swap` replaces the final table at the end.
    fn new(
        load: String,
        fields: &str,
        cols: &Columns,
        merge_sql: Option<String>,
        swap: Option<Swap>,
    ) -> Self {
        let meta = if cols.meta_default {
            META_NAMES_BUT_META
        } else {
            META_NAMES
        };
        Target {
            copy_text: format!("COPY {load} ({META_NAMES}{fields}) FROM STDIN"),
            copy_binary: format!("COPY {load} ({meta}{fields}) FROM STDIN (FORMAT binary)"),
            load,
            pending: false,
            complete: false,
            staged: false,
            merge_sql,
            swap,
        }
    }
}

/// Sets the tables up, tells the reader the column types, then loads
/// what it sends.
async fn writer(
    config: &Config,
    plans: &[Plan],
    rx: Receiver<Op>,
    ready: SyncSender<Vec<Columns>>,
    out: &mut Output,
) -> BuiltinResult<()> {
    let mut conn = Conn::open(config).await?;
    let mut targets = Vec::new();
    let mut columns = Vec::new();
    for p in plans {
        let (t, c) = setup(&mut conn, p, config.drop_cascade).await?;
        targets.push(t);
        columns.push(c);
    }
    if ready.send(columns).is_err() {
        return Ok(());
    }
    let mut in_tx = false;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut next: Option<Op> = None;
    loop {
        let op = match next.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => break,
            },
        };
        match op {
            Op::Rows {
                stream: i,
                binary,
                rows,
            } => {
                if !in_tx {
                    conn.execute("BEGIN").await?;
                    in_tx = true;
                }
                let t = &mut targets[i];
                let masker = conn.config.clone();
                let fail = |e: sqlx::Error| {
                    BuiltinError::system(format!(
                        "loading stream `{}` into {} failed: {}",
                        plans[i].name,
                        t.load,
                        masker.mask(&e.to_string())
                    ))
                };
                let sql = if binary { &t.copy_binary } else { &t.copy_text };
                let mut copy = conn.conn.copy_in_raw(sql).await.map_err(fail)?;
                if binary {
                    copy.send(binary::HEADER).await.map_err(fail)?;
                }
                copy.send(rows).await.map_err(fail)?;
                // Keep the COPY open while the same stream's rows follow.
                loop {
                    match rx.recv() {
                        Ok(Op::Rows {
                            stream,
                            binary: b,
                            rows,
                        }) if stream == i && b == binary => {
                            copy.send(rows).await.map_err(fail)?;
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if binary {
                    copy.send(binary::TRAILER).await.map_err(fail)?;
                }
                copy.finish().await.map_err(fail)?;
                if t.swap.is_some() {
                    t.pending = !t.complete;
                }
                t.staged = t.merge_sql.is_some();
            }
            Op::State(line) => {
                commit(&mut conn, &mut targets, &mut in_tx).await?;
                if targets.iter().any(|t| t.pending) {
                    held.push(line);
                } else {
                    out.raw(&line)?;
                    out.flush()?;
                }
            }
            Op::Complete(i) => {
                commit(&mut conn, &mut targets, &mut in_tx).await?;
                let t = &mut targets[i];
                if let Some(swap) = &t.swap {
                    if !t.complete {
                        conn.execute(&swap.sql).await?;
                    }
                }
                t.complete = true;
                t.pending = false;
                if !targets.iter().any(|t| t.pending) {
                    for line in held.drain(..) {
                        out.raw(&line)?;
                    }
                    out.flush()?;
                }
            }
        }
    }
    commit(&mut conn, &mut targets, &mut in_tx).await?;
    for (p, t) in plans.iter().zip(&targets) {
        if let (Some(swap), false) = (&t.swap, t.complete) {
            conn.execute(&format!("DROP TABLE IF EXISTS {}", swap.new))
                .await?;
            out.log(
                LogLevel::Warn,
                format!(
                    "Stream {} did not complete; {} is left as it was.",
                    p.name,
                    p.final_table()
                ),
            )?;
        }
    }
    conn.close().await;
    out.flush()
}

/// Merges what append_dedup staged, then commits.
async fn commit(conn: &mut Conn, targets: &mut [Target], in_tx: &mut bool) -> BuiltinResult<()> {
    if !*in_tx {
        return Ok(());
    }
    for t in targets.iter_mut() {
        if t.staged {
            if let Some(merge) = &t.merge_sql {
                conn.execute(merge).await?;
            }
            t.staged = false;
        }
    }
    conn.execute("COMMIT").await?;
    *in_tx = false;
    Ok(())
}

/// The columns a table has: name -> `format_type()`.
async fn existing_columns(
    conn: &mut Conn,
    table: &str,
) -> BuiltinResult<Option<Vec<(String, String)>>> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(&mut conn.conn)
    .await
    .map_err(|e| conn.err(&format!("cannot read the columns of {table}"), e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

const META_COLUMNS: &str = "\"_airbyte_raw_id\" uuid NOT NULL, \
    \"_airbyte_extracted_at\" timestamp with time zone NOT NULL, \
    \"_airbyte_meta\" jsonb NOT NULL, \"_airbyte_generation_id\" bigint";
const META_NAMES: &str =
    "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_meta\", \"_airbyte_generation_id\"";
/// The binary rows of a load table whose `_airbyte_meta` defaults to a
/// row's without changes leave that column out: the server then parses no
/// JSON for it.
const META_NAMES_BUT_META: &str =
    "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_generation_id\"";

/// Makes the `_airbyte_meta` of a row without changes the default of
/// `table`, a table only this sync loads.
fn meta_default_sql(table: &str, p: &Plan) -> String {
    format!(
        "ALTER TABLE {table} ALTER COLUMN \"_airbyte_meta\" SET DEFAULT {}::jsonb",
        super::literal(&meta(&[], &[], p.sync_id))
    )
}

fn create_sql(table: &str, plan: &Plan, types: &[ColType]) -> String {
    let mut cols = META_COLUMNS.to_string();
    for (f, t) in plan.fields.iter().zip(types) {
        cols.push_str(&format!(", {} {}", ident(f), t.sql()));
    }
    format!("CREATE TABLE {table} ({cols})")
}

/// A stream's columns as the reader needs them.
struct Columns {
    /// Each field's column type.
    types: Vec<ColType>,
    /// Every column has the exact type whose binary form sluice writes (a
    /// table sluice created; not, say, an `integer` column made by hand).
    binary: bool,
    /// `_airbyte_meta` defaults to a row's without changes in the load
    /// table, so binary rows without changes leave it out.
    meta_default: bool,
}

impl Columns {
    fn created(p: &Plan) -> Self {
        Columns {
            types: p.schema_types.clone(),
            binary: true,
            meta_default: false,
        }
    }
}

/// Whether a column of `sql_type` (`format_type()`) takes a value of `t`
/// in the binary form sluice writes for `t`.
fn takes_binary(sql_type: &str, t: ColType) -> bool {
    // A type modifier, `varchar(20)` or `timestamp(3) with time zone`,
    // applies to binary input as it does to text.
    let base = match (sql_type.find('('), sql_type.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &sql_type[..a], &sql_type[b + 1..]),
        _ => sql_type.to_string(),
    };
    let names: &[&str] = match t {
        ColType::Text => &["character varying", "text"],
        ColType::BigInt => &["bigint"],
        ColType::Numeric => &["numeric"],
        ColType::Bool => &["boolean"],
        ColType::Date => &["date"],
        ColType::Time => &["time without time zone"],
        ColType::TimeTz => &["time with time zone"],
        ColType::Timestamp => &["timestamp without time zone"],
        ColType::TimestampTz => &["timestamp with time zone"],
        ColType::Jsonb => &["jsonb"],
    };
    names.contains(&base.as_str())
}

/// Creates or evolves a stream's tables; returns its target and columns.
async fn setup(conn: &mut Conn, p: &Plan, drop_cascade: bool) -> BuiltinResult<(Target, Columns)> {
    let final_table = p.final_table();
    conn.execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&p.schema)))
        .await?;
    let replaced = p.mode == DestinationSyncMode::Overwrite || p.refresh;
    if replaced && !drop_cascade {
        refuse_dependents(conn, p, &final_table).await?;
    }
    let drop_final = if drop_cascade {
        format!("DROP TABLE IF EXISTS {final_table} CASCADE")
    } else {
        format!("DROP TABLE IF EXISTS {final_table}")
    };
    let fields: String = p.fields.iter().map(|f| format!(", {}", ident(f))).collect();
    match p.mode {
        DestinationSyncMode::Overwrite => {
            let new = format!("{}.{}", ident(&p.schema), ident(&p.side_name("new")));
            // A killed run's new table is not worth keeping: start over.
            conn.execute(&format!(
                "DROP TABLE IF EXISTS {new}; {}; {}",
                create_sql(&new, p, &p.schema_types),
                meta_default_sql(&new, p)
            ))
            .await?;
            let swap = format!(
                "BEGIN; {drop_final}; \
                 ALTER TABLE {new} ALTER COLUMN \"_airbyte_meta\" DROP DEFAULT; \
                 ALTER TABLE {new} RENAME TO {}; COMMIT",
                ident(&p.table)
            );
            let cols = Columns {
                meta_default: true,
                ..Columns::created(p)
            };
            let swap = Some(Swap {
                new: new.clone(),
                sql: swap,
            });
            Ok((Target::new(new, &fields, &cols, None, swap), cols))
        }
        DestinationSyncMode::AppendDedup if p.refresh => {
            let new = format!("{}.{}", ident(&p.schema), ident(&p.side_name("new")));
            let stage = ident(&p.side_name("stage"));
            let (index, new_index) = (p.side_name("pk"), p.side_name("newpk"));
            conn.execute(&format!(
                "DROP TABLE IF EXISTS {new}; {}; CREATE INDEX {} ON {new} ({}); \
                 CREATE TEMP TABLE {stage} (LIKE {new}); {}",
                create_sql(&new, p, &p.schema_types),
                ident(&new_index),
                primary_key_list(p),
                meta_default_sql(&stage, p)
            ))
            .await?;
            // The old table's index goes with it; the new one takes its name.
            let swap = format!(
                "BEGIN; {drop_final}; ALTER TABLE {new} RENAME TO {}; \
                 ALTER INDEX {}.{} RENAME TO {}; COMMIT",
                ident(&p.table),
                ident(&p.schema),
                ident(&new_index),
                ident(&index)
            );
            let merge = merge_sql(p, &new, &stage);
            let cols = Columns {
                meta_default: true,
                ..Columns::created(p)
            };
            let swap = Some(Swap { new, sql: swap });
            Ok((Target::new(stage, &fields, &cols, Some(merge), swap), cols))
        }
        _ => {
            let mut cols = match existing_columns(conn, &final_table).await? {
                None => {
                    conn.execute(&create_sql(&final_table, p, &p.schema_types))
                        .await?;
                    Columns::created(p)
                }
                Some(existing) => {
                    let sql_type = |name: &str| {
                        existing
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, t)| t.as_str())
                    };
                    let mut binary = [
                        ("_airbyte_raw_id", "uuid"),
                        ("_airbyte_extracted_at", "timestamp with time zone"),
                        ("_airbyte_meta", "jsonb"),
                        ("_airbyte_generation_id", "bigint"),
                    ]
                    .iter()
                    .all(|(name, t)| sql_type(name) == Some(*t));
                    // Schema evolution: new fields become new columns; a
                    // column already there keeps its type.
                    let mut types = Vec::new();
                    for (f, t) in p.fields.iter().zip(&p.schema_types) {
                        match sql_type(stored_name(f)) {
                            Some(sql_type) => {
                                let t = ColType::from_sql(sql_type);
                                binary &= takes_binary(sql_type, t);
                                types.push(t);
                            }
                            None => {
                                conn.execute(&format!(
                                    "ALTER TABLE {final_table} ADD COLUMN {} {}",
                                    ident(f),
                                    t.sql()
                                ))
                                .await?;
                                types.push(*t);
                            }
                        }
                    }
                    Columns {
                        types,
                        binary,
                        meta_default: false,
                    }
                }
            };
            if p.mode == DestinationSyncMode::Append {
                return Ok((Target::new(final_table, &fields, &cols, None, None), cols));
            }
            let stage = ident(&p.side_name("stage"));
            conn.execute(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {final_table} ({}); \
                 CREATE TEMP TABLE {stage} (LIKE {final_table}); {}",
                ident(&p.side_name("pk")),
                primary_key_list(p),
                meta_default_sql(&stage, p)
            ))
            .await?;
            cols.meta_default = true;
            let merge = merge_sql(p, &final_table, &stage);
            Ok((Target::new(stage, &fields, &cols, Some(merge), None), cols))
        }
    }
}

/// Fails, before anything is loaded, when views or foreign keys depend on
/// a table this sync will replace: dropping it at the end would fail.
async fn refuse_dependents(conn: &mut Conn, p: &Plan, table: &str) -> BuiltinResult<()> {
    let dependents: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT format('view %s', v.oid::regclass) FROM pg_depend d \
           JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass($1) \
           AND v.oid <> d.refobjid \
         UNION SELECT format('foreign key %I of %s', c.conname, c.conrelid::regclass) \
         FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = to_regclass($1) \
           AND c.conrelid <> c.confrelid \
         ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut conn.conn)
    .await
    .map_err(|e| conn.err("cannot look for what depends on the table", e))?;
    if dependents.is_empty() {
        return Ok(());
    }
    let (depend, them) = if dependents.len() == 1 {
        ("depends", "it")
    } else {
        ("depend", "them")
    };
    Err(BuiltinError::config(format!(
        "stream `{}`: {table} is replaced at the end of this sync, but {} {depend} on it. \
         Drop {them} first, or set \"drop_cascade\": true in the destination config to drop \
         {them} with the table.",
        p.name,
        dependents.join(", "),
    )))
}

/// The primary key's columns, quoted, for an index.
fn primary_key_list(p: &Plan) -> String {
    let pk: Vec<String> = p.primary_key.iter().map(|k| ident(k)).collect();
    pk.join(", ")
}

/// A name as PostgreSQL stores it: cut to 63 bytes on a character
/// boundary, as it does (with a notice) for longer identifiers.
fn stored_name(name: &str) -> &str {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name;
    }
    let mut end = MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The statements that merge a staging table into the final one: per
/// key, the staged row with the newest cursor (the later one on a tie)
/// replaces the final row unless that has a newer cursor; deleted rows
/// are removed.
fn merge_sql(p: &Plan, final_table: &str, stage: &str) -> String {
    let pk: Vec<String> = p.primary_key.iter().map(|k| ident(k)).collect();
    let on = |a: &str, b: &str| -> String {
        pk.iter()
            .map(|k| format!("{a}.{k} = {b}.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let newest = "_sluice_newest";
    let mut order = pk.join(", ");
    if let Some(c) = &p.cursor {
        order.push_str(&format!(", {} DESC NULLS LAST", ident(c)));
    }
    order.push_str(", ctid DESC");
    let mut sql = format!(
        "CREATE TEMP TABLE {newest} ON COMMIT DROP AS \
         SELECT DISTINCT ON ({}) * FROM {stage} ORDER BY {order};",
        pk.join(", ")
    );
    if let Some(c) = &p.cursor {
        sql.push_str(&format!(
            " DELETE FROM {newest} n USING {final_table} f WHERE {} AND f.{c} > n.{c};",
            on("n", "f"),
            c = ident(c)
        ));
    }
    sql.push_str(&format!(
        " DELETE FROM {final_table} f USING {newest} n WHERE {};",
        on("f", "n")
    ));
    let deleted = if p.fields.iter().any(|f| f == CDC_DELETED) {
        format!(" WHERE {} IS NULL", ident(CDC_DELETED))
    } else {
        String::new()
    };
    sql.push_str(&format!(
        " INSERT INTO {final_table} SELECT * FROM {newest}{deleted}; TRUNCATE {stage}; DROP TABLE {newest};"
    ));
    sql
}

/// Turns records into rows for COPY for one stream.
struct Encoder {
    index: FieldIndex,
    types: Vec<ColType>,
    fields: Vec<String>,
    /// Rows go in COPY's binary format when they can.
    binary: bool,
    /// Binary rows leave `_airbyte_meta` to the column's default (rows
    /// with changes then go as text).
    meta_default: bool,
    /// `\t<extracted_at>\t`, and the milliseconds it was written for.
    extracted_at: Vec<u8>,
    extracted_ms: Option<i64>,
    generation_id: i64,
    sync_id: Option<i64>,
    /// `_airbyte_meta` for a row without changes, as JSON.
    clean_meta: Vec<u8>,
    /// The same, COPY-escaped.
    clean_meta_text: Vec<u8>,
    uuids: Uuids,
    whole: bool,
}

impl Encoder {
    fn new(p: &Plan, columns: Columns) -> Self {
        let clean_meta = meta(&[], &[], p.sync_id).into_bytes();
        Encoder {
            index: FieldIndex::new(&p.fields),
            types: columns.types,
            fields: p.fields.clone(),
            binary: columns.binary,
            meta_default: columns.meta_default,
            extracted_at: Vec::new(),
            extracted_ms: None,
            generation_id: p.generation_id,
            sync_id: p.sync_id,
            clean_meta_text: copy_escaped(&clean_meta),
            clean_meta,
            uuids: Uuids::new(),
            whole: p.whole,
        }
    }

    /// `_airbyte_extracted_at` for the next rows: the record's
    /// `emitted_at`, else now. Sources stamp records in batches, so the
    /// text is rewritten only when the time changes.
    fn set_extracted_at(&mut self, emitted_at: Option<i64>) {
        let ms = emitted_at.unwrap_or_else(crate::protocol::now_millis);
        if self.extracted_ms == Some(ms) {
            return;
        }
        self.extracted_ms = Some(ms);
        self.extracted_at.clear();
        self.extracted_at.push(b'\t');
        write_millis(&mut self.extracted_at, ms);
        self.extracted_at.push(b'\t');
    }

    /// Adds one row for the record `data` to `out`.
    fn row(
        &mut self,
        data: &[u8],
        source: &[RecordMetaChange],
        out: &mut Batch,
    ) -> BuiltinResult<()> {
        let text = std::str::from_utf8(data)
            .map_err(|_| BuiltinError::system("a record's data is not UTF-8"))?;
        let raw = self.split(text);
        self.encode_row(&raw, source, out);
        Ok(())
    }

    /// Each column's raw JSON value in the record `data`.
    fn split<'a>(&self, data: &'a str) -> Vec<Option<&'a RawValue>> {
        if self.whole {
            return vec![serde_json::from_str::<&RawValue>(data).ok()];
        }
        let mut slots: Vec<Option<&RawValue>> = vec![None; self.types.len()];
        let mut de = serde_json::Deserializer::from_str(data);
        let seed = Fields {
            index: &self.index,
            slots: &mut slots,
        };
        if seed.deserialize(&mut de).is_err() {
            // Not an object: every column is NULL, as Airbyte does.
            slots.iter_mut().for_each(|s| *s = None);
        }
        slots
    }

    /// Adds the row of the columns' raw values to `out`: binary when every
    /// value has a shape the binary writer knows, else as text. `source`:
    /// the changes the source made to the record.
    fn encode_row(
        &mut self,
        raw: &[Option<&RawValue>],
        source: &[RecordMetaChange],
        out: &mut Batch,
    ) {
        if !(self.binary && self.binary_row(raw, source, &mut out.binary)) {
            self.text_row(raw, source, &mut out.text);
        }
    }

    /// Appends the row in COPY's binary format, or nothing and false.
    fn binary_row(
        &mut self,
        raw: &[Option<&RawValue>],
        source: &[RecordMetaChange],
        out: &mut Vec<u8>,
    ) -> bool {
        if self.meta_default && !source.is_empty() {
            return false;
        }
        let start = out.len();
        let meta_fields = if self.meta_default { 3 } else { 4 };
        binary::tuple(meta_fields + self.types.len(), out);
        binary::field(&self.uuids.next(), out);
        binary::timestamp_millis(self.extracted_ms.unwrap_or(0), out);
        let meta_at = out.len();
        if !self.meta_default {
            binary::jsonb(&self.clean_meta, out);
        }
        let meta_end = out.len();
        binary::int8(self.generation_id, out);
        let mut changes: Vec<usize> = Vec::new();
        for (i, (t, v)) in self.types.iter().zip(raw).enumerate() {
            let Some(v) = v else {
                binary::null(out);
                continue;
            };
            match binary::value(*t, v.get(), out) {
                Outcome::Wrote => {}
                Outcome::Misfit => {
                    binary::null(out);
                    changes.push(i);
                }
                Outcome::Text => {
                    out.truncate(start);
                    return false;
                }
            }
        }
        if !changes.is_empty() || !source.is_empty() {
            if self.meta_default {
                out.truncate(start);
                return false;
            }
            let mut m = Vec::new();
            binary::jsonb(self.changed_meta(source, &changes).as_bytes(), &mut m);
            out.splice(meta_at..meta_end, m);
        }
        true
    }

    /// Appends the row as a line of COPY text.
    fn text_row(
        &mut self,
        raw: &[Option<&RawValue>],
        source: &[RecordMetaChange],
        out: &mut Vec<u8>,
    ) {
        let mut uuid = [0u8; 36];
        hex_uuid(&self.uuids.next(), &mut uuid);
        out.extend_from_slice(&uuid);
        out.extend_from_slice(&self.extracted_at);
        let meta_at = out.len();
        out.extend_from_slice(&self.clean_meta_text);
        let _ = write!(out, "\t{}", self.generation_id);
        let mut changes: Vec<usize> = Vec::new();
        for (i, (t, v)) in self.types.iter().zip(raw).enumerate() {
            out.push(b'\t');
            match v {
                None => out.extend_from_slice(b"\\N"),
                Some(v) => {
                    if !encode(*t, v.get(), out) {
                        out.extend_from_slice(b"\\N");
                        changes.push(i);
                    }
                }
            }
        }
        out.push(b'\n');
        if !changes.is_empty() || !source.is_empty() {
            let m = copy_escaped(self.changed_meta(source, &changes).as_bytes());
            out.splice(meta_at..meta_at + self.clean_meta_text.len(), m);
        }
    }

    /// `_airbyte_meta` for a row the source changed (`source`) and whose
    /// columns `nulled` did not fit.
    fn changed_meta(&self, source: &[RecordMetaChange], nulled: &[usize]) -> String {
        let names: Vec<&str> = nulled.iter().map(|&i| self.fields[i].as_str()).collect();
        meta(source, &names, self.sync_id)
    }
}

/// A RECORD line's `emitted_at` (whole milliseconds), found around its
/// `data` without parsing the line again. Absent, or not a plausible time
/// (before 1970, after 9999), is None.
fn emitted_at(line: &[u8], data: &[u8]) -> Option<i64> {
    let start = (data.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let before = line.get(..start)?;
    let after = line.get(start + data.len()..)?;
    const KEY: &[u8] = b"\"emitted_at\"";
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(KEY));
    for part in [after, before] {
        let mut from = 0;
        while let Some(i) = finder.find(&part[from..]) {
            let at = from + i;
            from = at + KEY.len();
            // A key, not the end of some string value.
            let prev = part[..at].iter().rev().find(|b| !b.is_ascii_whitespace());
            if !matches!(prev, Some(b',' | b'{')) {
                continue;
            }
            let rest = part[from..].trim_ascii_start().strip_prefix(b":")?;
            let rest = rest.trim_ascii_start();
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            return millis(std::str::from_utf8(&rest[..end]).ok()?);
        }
    }
    None
}

/// `_airbyte_meta`: the source's changes to the record, the fields nulled
/// because they did not fit, and the sync.
fn meta(source: &[RecordMetaChange], nulled: &[&str], sync_id: Option<i64>) -> String {
    let source = source.iter().filter_map(|c| serde_json::to_value(c).ok());
    let changes: Vec<Value> = source
        .chain(nulled.iter().map(|f| {
            serde_json::json!({
                "field": f,
                "change": "NULLED",
                "reason": "DESTINATION_TYPECAST_ERROR"
            })
        }))
        .collect();
    serde_json::json!({"changes": changes, "sync_id": sync_id}).to_string()
}

/// Finds the raw JSON of each column's field in a record's data.
struct Fields<'i, 'a> {
    index: &'i FieldIndex,
    slots: &'i mut Vec<Option<&'a RawValue>>,
}

impl<'de, 'i> DeserializeSeed<'de> for Fields<'i, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'i> Visitor<'de> for Fields<'i, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Records of a stream list their fields in one order: the column
        // after the last one found is tried first.
        let mut next = 0;
        while let Some(key) = map.next_key_seed(Key(self.index, next))? {
            match key {
                Some(i) => {
                    next = i + 1;
                    let v: &'de RawValue = map.next_value()?;
                    self.slots[i] = if v.get() == "null" { None } else { Some(v) };
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Where each field name's column is: a scan of the names beats hashing
/// for the usual handful of columns; wide tables get a hash map.
enum FieldIndex {
    Few(Vec<String>),
    Many(HashMap<String, usize>),
}

impl FieldIndex {
    fn new(fields: &[String]) -> Self {
        if fields.len() <= 24 {
            FieldIndex::Few(fields.to_vec())
        } else {
            FieldIndex::Many(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.clone(), i))
                    .collect(),
            )
        }
    }

    /// The column of the field `name`, looked for at `first` first.
    fn get(&self, name: &str, first: usize) -> Option<usize> {
        match self {
            FieldIndex::Few(names) if names.get(first).is_some_and(|n| n == name) => Some(first),
            FieldIndex::Few(names) => names.iter().position(|n| n == name),
            FieldIndex::Many(map) => map.get(name).copied(),
        }
    }
}

/// A field name, looked up without allocating it, and the column to try
/// first.
struct Key<'i>(&'i FieldIndex, usize);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.get(v, self.1))
    }
}

/// Writes `raw` (a JSON value's text) as COPY text for a column of type
/// `t`; false when it does not fit (nothing is written then).
fn encode(t: ColType, raw: &str, out: &mut Vec<u8>) -> bool {
    let b = raw.as_bytes();
    let string = b.first() == Some(&b'"');
    match t {
        ColType::Text => match binary::text_of(raw) {
            // A JSON string without escapes holds no control character: as is.
            Some(Cow::Borrowed(s)) if string => out.extend_from_slice(s.as_bytes()),
            Some(s) => copy_escape(s.as_bytes(), out),
            None => return false,
        },
        ColType::Jsonb => {
            if !binary::jsonb_fits(raw) {
                return false;
            }
            copy_escape(b, out);
        }
        ColType::Bool => match binary::bool_of(raw) {
            Some(true) => out.push(b't'),
            Some(false) => out.push(b'f'),
            None => return false,
        },
        ColType::BigInt => match binary::bigint_of(raw) {
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => return false,
        },
        ColType::Numeric => {
            if string {
                match raw {
                    "\"NaN\"" | "\"Infinity\"" | "\"-Infinity\"" => {
                        out.extend_from_slice(&b[1..b.len() - 1])
                    }
                    _ => return false,
                }
            } else if matches!(b.first(), Some(b'-' | b'0'..=b'9')) && numeric_fits(raw) {
                out.extend_from_slice(b);
            } else {
                return false;
            }
        }
        ColType::Date
        | ColType::Time
        | ColType::TimeTz
        | ColType::Timestamp
        | ColType::TimestampTz => {
            // Valid values are plain ASCII, never escaped.
            if !string || b.len() < 2 || memchr::memchr(b'\\', b).is_some() {
                return false;
            }
            let s = &raw[1..raw.len() - 1];
            let ok = match t {
                ColType::Date => valid_date(s),
                ColType::Time => valid_time(s),
                ColType::TimeTz => valid_time(s),
                _ => valid_timestamp(s),
            };
            if !ok {
                return false;
            }
            out.extend_from_slice(s.as_bytes());
        }
    }
    true
}

/// Whether a JSON number's exponent is within what `numeric` holds.
fn numeric_fits(raw: &str) -> bool {
    match raw.find(['e', 'E']) {
        None => true,
        Some(i) => raw[i + 1..]
            .trim_start_matches('+')
            .parse::<i64>()
            .is_ok_and(|e| e.abs() <= 100_000),
    }
}

/// COPY text escaping: backslash, newline, carriage return and tab.
fn copy_escape(b: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr3(b'\\', b'\n', b'\r', b).is_none() && memchr::memchr(b'\t', b).is_none() {
        out.extend_from_slice(b);
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

fn copy_escaped(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    copy_escape(b, &mut v);
    v
}

/// `s`, exactly `n` ASCII digits, as a number.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n).then(|| binary::num(s.as_bytes(), 0, n))?
}

/// `YYYY-MM-DD` (more year digits allowed, ` BC` too), a real calendar day
/// in PostgreSQL's range; or `infinity`.
fn valid_date(s: &str) -> bool {
    if s == "infinity" || s == "-infinity" {
        return true;
    }
    let s = s.strip_suffix(" BC").unwrap_or(s);
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if y.len() < 4 || y.len() > 6 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (Ok(y), Some(m), Some(d)) = (y.parse::<u32>(), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    binary::real_day(y, m, d)
}

/// Whether `s` has the shape nearly every timestamp has,
/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][offset]`, and is valid. False leaves the
/// verdict to [`valid_timestamp`].
fn usual_timestamp(s: &str) -> bool {
    binary::usual_timestamp(s).is_some()
}

/// `HH:MM[:SS[.ffffff]]`, then maybe an offset `Z`, `+HH`, `+HHMM`, `+HH:MM`.
fn valid_time(s: &str) -> bool {
    let (clock, offset) = match s.bytes().position(|b| matches!(b, b'+' | b'-' | b'Z')) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    // A time without a zone ignores an offset, as PostgreSQL does.
    offset.is_none_or(valid_offset) && valid_clock(clock)
}

fn valid_clock(s: &str) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let mut parts = hms.split(':');
    let (Some(h), Some(m)) = (
        parts.next().and_then(|h| digits(h, 2)),
        parts.next().and_then(|m| digits(m, 2)),
    ) else {
        return false;
    };
    let sec = match parts.next() {
        Some(x) => match digits(x, 2) {
            Some(v) => v,
            None => return false,
        },
        None => 0,
    };
    if parts.next().is_some() {
        return false;
    }
    (h < 24 && m < 60 && sec < 60)
        || (h == 24 && m == 0 && sec == 0 && frac.is_none_or(|f| f.bytes().all(|b| b == b'0')))
}

fn valid_offset(o: &str) -> bool {
    binary::offset(o).is_some()
}

/// A date, `T` or a space, a time, an optional offset; or `infinity`.
fn valid_timestamp(s: &str) -> bool {
    if usual_timestamp(s) || s == "infinity" || s == "-infinity" {
        return true;
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(x) => (x, true),
        None => (s, false),
    };
    let Some(i) = s.find(['T', ' ']) else {
        return false;
    };
    let (date, time) = (&s[..i], &s[i + 1..]);
    let date_ok = if bc {
        valid_date(&format!("{date} BC"))
    } else {
        valid_date(date)
    };
    date_ok && valid_time(time)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm+00`.
fn write_millis(out: &mut Vec<u8>, ms: i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}+00",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            ms.rem_euclid(1000)
        )
        .as_bytes(),
    );
}

/// Random (version 4) UUIDs for `_airbyte_raw_id`, from a generator seeded
/// by the OS: a UUID per row must not cost a system call.
struct Uuids {
    state: u64,
}

impl Uuids {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        let from_os = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .is_ok();
        let mut state = u64::from_le_bytes(seed);
        if !from_os {
            state ^= crate::protocol::now_millis() as u64 ^ (u64::from(std::process::id()) << 32);
        }
        Uuids { state }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        b
    }
}

/// A UUID's text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn hex_uuid(b: &[u8; 16], out: &mut [u8; 36]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[at] = b'-';
            at += 1;
        }
        out[at] = HEX[(byte >> 4) as usize];
        out[at + 1] = HEX[(byte & 15) as usize];
        at += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: ColType, raw: &str) -> Option<String> {
        let mut out = Vec::new();
        encode(t, raw, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_that_fit_are_written_as_copy_text() {
        assert_eq!(
            enc(ColType::Text, r#""a\tb\\c\n""#).as_deref(),
            Some("a\\tb\\\\c\\n")
        );
        assert_eq!(enc(ColType::Text, "12").as_deref(), Some("12"));
        assert_eq!(enc(ColType::BigInt, "-42").as_deref(), Some("-42"));
        assert_eq!(enc(ColType::BigInt, "3.0").as_deref(), Some("3"));
        assert_eq!(enc(ColType::Numeric, "1.50e3").as_deref(), Some("1.50e3"));
        assert_eq!(enc(ColType::Numeric, "\"NaN\"").as_deref(), Some("NaN"));
        assert_eq!(enc(ColType::Bool, "true").as_deref(), Some("t"));
        assert_eq!(
            enc(ColType::Jsonb, "\"\\u00e9\"").as_deref(),
            Some("\"\\\\u00e9\"")
        );
        assert_eq!(
            enc(ColType::Date, "\"2024-02-29\"").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            enc(ColType::TimestampTz, "\"2024-01-01T10:00:00.123456+02:00\"").as_deref(),
            Some("2024-01-01T10:00:00.123456+02:00")
        );
        assert_eq!(
            enc(ColType::Timestamp, "\"2024-01-01 10:00:00\"").as_deref(),
            Some("2024-01-01 10:00:00")
        );
        assert_eq!(
            enc(ColType::TimeTz, "\"10:00:00+05:30\"").as_deref(),
            Some("10:00:00+05:30")
        );
        assert_eq!(
            enc(ColType::Time, "\"24:00:00\"").as_deref(),
            Some("24:00:00")
        );
        assert_eq!(
            enc(ColType::Jsonb, "{\"a\": [1, \"x\\ny\"]}").as_deref(),
            Some("{\"a\": [1, \"x\\\\ny\"]}")
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        for (t, raw) in [
            (ColType::BigInt, "\"12\""),
            (ColType::BigInt, "1.5"),
            (ColType::BigInt, "99999999999999999999"),
            (ColType::Numeric, "\"abc\""),
            (ColType::Numeric, "true"),
            (ColType::Bool, "1"),
            (ColType::Date, "\"2023-02-29\""),
            (ColType::Date, "\"0000-01-01\""),
            (ColType::Date, "\"yesterday\""),
            (ColType::Timestamp, "\"2024-01-01T25:00:00\""),
            (ColType::TimestampTz, "\"2024-13-01T00:00:00Z\""),
            (ColType::Time, "\"10:00\"x"),
            (ColType::Time, "\"10:60:00\""),
            (ColType::TimeTz, "\"10:00:00+16:00\""),
            (ColType::Text, "\"a\\u0000b\""),
            (ColType::Jsonb, "\"a\\u0000b\""),
            (ColType::Jsonb, "[\"\\ud800\"]"),
            (ColType::Numeric, "1e1000000"),
        ] {
            assert_eq!(enc(t, raw), None, "{t:?} {raw}");
        }
    }

    #[test]
    fn long_names_are_cut_as_postgres_cuts_them() {
        assert_eq!(stored_name("short"), "short");
        let long = "é".repeat(40);
        assert_eq!(stored_name(&long), "é".repeat(31));
        assert_eq!(stored_name(&"a".repeat(70)).len(), 63);
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let mut g = Uuids::new();
        let (mut a, mut b) = ([0u8; 36], [0u8; 36]);
        hex_uuid(&g.next(), &mut a);
        hex_uuid(&g.next(), &mut b);
        let a = std::str::from_utf8(&a).unwrap();
        assert_eq!(&a[8..9], "-");
        assert_eq!(&a[14..15], "4");
        assert_eq!(&a[23..24], "-");
        assert_ne!(a.as_bytes(), &b[..]);
    }

    #[test]
    fn emitted_at_is_found_around_the_data() {
        let find = |line: &str| {
            let e = crate::protocol::envelope::scan(line.as_bytes()).unwrap();
            emitted_at(line.as_bytes(), e.record.unwrap().data)
        };
        assert_eq!(
            find(
                r#"{"type":"RECORD","record":{"stream":"s","data":{"emitted_at":5},"emitted_at":1700000000123}}"#
            ),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            find(
                r#"{"type":"RECORD","record":{"emitted_at" : 42 ,"stream":"\"emitted_at\":7","data":{}}}"#
            ),
            Some(42)
        );
        assert_eq!(
            find(r#"{"type":"RECORD","record":{"stream":"s","data":{"emitted_at":5}}}"#),
            None
        );
    }

    #[test]
    fn extracted_at_is_a_timestamp() {
        let mut v = Vec::new();
        write_millis(&mut v, 951_782_400_123);
        assert_eq!(String::from_utf8(v).unwrap(), "2000-02-29 00:00:00.123+00");
    }

    /// Plans for `users` (id, name), `s` without a namespace and `s` in
    /// namespace `ns`.
    fn test_plans() -> (Vec<Plan>, Vec<Encoder>) {
        let config: Config = serde_json::from_str(r#"{"url":"postgres://h/d"}"#).unwrap();
        let stream = |name: &str, ns: Option<&str>| {
            serde_json::json!({
                "stream": {"name": name, "namespace": ns, "supported_sync_modes": ["full_refresh"],
                    "json_schema": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "name": {"type": "string"}}}},
                "sync_mode": "full_refresh", "destination_sync_mode": "append"
            })
        };
        let catalog = serde_json::json!({"streams": [
            stream("users", None), stream("s", None), stream("s", Some("ns"))
        ]});
        let plans = plans(&config, &serde_json::from_value(catalog).unwrap()).unwrap();
        let encoders = plans
            .iter()
            .map(|p| Encoder::new(p, Columns::created(p)))
            .collect();
        (plans, encoders)
    }

    type Read = (usize, Option<i64>, Vec<Option<String>>);

    /// A RECORD line read the careful way: the scanner, then the data.
    fn careful(line: &str, plans: &[Plan], encoders: &[Encoder]) -> Option<Read> {
        let env = envelope::scan(line.as_bytes()).ok()?;
        let r = env.record?;
        let i = plan_of(plans, r.namespace.as_deref(), &r.stream)?;
        let data = std::str::from_utf8(r.data).unwrap();
        let slots = encoders[i].split(data);
        let slots = slots
            .iter()
            .map(|v| v.map(|v| v.get().to_string()))
            .collect();
        Some((i, emitted_at(line.as_bytes(), r.data), slots))
    }

    #[test]
    fn one_pass_reads_records_as_the_careful_path_does() {
        let (plans, encoders) = test_plans();
        let read = |line: &str| {
            one_pass(line, &plans, &encoders).map(|r| {
                let slots = r.slots.iter().map(|v| v.map(|v| v.get().to_string()));
                (r.plan, r.emitted_at, slots.collect::<Vec<_>>())
            })
        };
        // Lines the one pass takes, each as the careful path reads it.
        for line in [
            r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"name":"a"},"emitted_at":5}}"#,
            r#"{"type":"RECORD","record":{"data":{"name":"b\"c","id":2},"stream":"users","emitted_at":6.0}}"#,
            r#"{"record":{"stream":"users","data":{"id":null,"x":[1,{"y":2}]}},"type":"RECORD"}"#,
            r#"{"type":"RECORD","record":{"namespace":"ns","stream":"s","data":{"id":3}},"x":1}"#,
            r#" {"type":"RECORD","record":{"stream":"users","emitted_at":-1,"data":{"name":"é"}}} "#,
        ] {
            let got = read(line);
            assert!(got.is_some(), "{line}");
            assert_eq!(got, careful(line, &plans, &encoders), "{line}");
        }
        assert_eq!(
            read(r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1}}}"#)
                .unwrap()
                .0,
            0
        );
        assert_eq!(
            read(r#"{"type":"RECORD","record":{"stream":"s","data":{}}}"#)
                .unwrap()
                .0,
            1
        );
        // Lines it leaves to the careful path.
        for line in [
            // The namespace after the data, which was split for `s`.
            r#"{"type":"RECORD","record":{"stream":"s","data":{"id":3},"namespace":"ns"}}"#,
            r#"{"type":"RECORD","record":{"str\u0065am":"users","data":{"id":4}}}"#,
            r#"{"type":"RECORD","record":{"stream":"users","data":[1,2]}}"#,
            r#"{"type":"STATE","state":{"type":"LEGACY","data":{}}}"#,
            r#"{"type":"RECORD","type":"RECORD","record":{"stream":"users","data":{}}}"#,
            r#"{"type":"RECORD","record":{"stream":"users","stream":"s","data":{}}}"#,
            r#"{"type":"RECORD","record":{"stream":"users","data":{"id":9}}} x"#,
            r#"{"type":"RECORD","record":{"stream":"other","data":{"id":9}}}"#,
            r#"{"type":"RECORD","record":{"stream":"users"}}"#,
            r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1}"#,
        ] {
            assert!(read(line).is_none(), "{line}");
        }
    }

    #[test]
    fn usual_timestamps_agree_with_the_general_check() {
        for s in [
            "2024-01-01T00:00:01Z",
            "2024-01-01 00:00:01+00",
            "2024-02-29T23:59:59.123456+05:30",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:60:00",
            "2024-01-01T00:00:00.",
            "2024-01-01T00:00:00+1",
            "2024-01-01T00:00:00+16",
            "2024-01-01T00:00:00 BC",
            "2024-01-01T00:00:00+01 BC",
            "0000-01-01T00:00:00",
            "2024-01-01X00:00:00",
            "2024-1-01T00:00:00Z",
        ] {
            if usual_timestamp(s) {
                assert!(valid_timestamp_general(s), "{s}");
            }
        }
        assert!(usual_timestamp("2024-06-01T00:00:02+00:00"));
        assert!(!usual_timestamp("2023-02-29T00:00:00"));
    }

    /// The general check alone, without the quick path.
    fn valid_timestamp_general(s: &str) -> bool {
        let i = s.find(['T', ' ']).unwrap();
        valid_date(&s[..i]) && valid_time(&s[i + 1..])
    }
}
