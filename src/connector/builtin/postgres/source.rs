//! The source side: discover tables and views, read them with COPY.
//!
//! Rows come in COPY's text format, the cheapest PostgreSQL can produce,
//! and each becomes a RECORD line by a single pass over its bytes: the
//! fields are typed by their columns (numbers and booleans as they are,
//! text JSON-escaped, timestamps in ISO 8601, json and arrays as JSON that
//! PostgreSQL rendered), so nothing is parsed into values and no more than
//! a row is held. (Letting PostgreSQL build the JSON with `row_to_json`
//! doubled the server's work for the same bytes.) Incremental reads add
//! the cursor's text as a last field, for the state.
//!
//! An incremental read must never skip a row: rows can be committed after
//! a sync with the very cursor value it ended at, so the state counts the
//! rows sent at its value (`cursor_record_count`, as Airbyte's
//! source-postgres does) and the next read starts at `>=` that value
//! unless the table still has exactly that many rows there.

use super::json::{find_byte, string_stop};
use super::types::{JsonKind, PgColumn};
use super::{ident, literal, Config, Conn};
use crate::connector::builtin::handoff::{Batch as HandedRows, Handoff, RowsLine};
use crate::connector::builtin::{record_head, BuiltinError, BuiltinResult, Output};
use crate::protocol::{
    now_millis, AirbyteCatalog, AirbyteStream, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream,
    Extra, StateMessage, StateSnapshot, StreamDescriptor, StreamStatus, SyncMode,
};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::BTreeMap;

/// A table or view and its columns, as the catalog describes it.
struct Table {
    schema: String,
    name: String,
    columns: Vec<PgColumn>,
    primary_key: Vec<String>,
}

impl Table {
    fn qualified(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    fn column(&self, name: &str) -> Option<&PgColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const TABLES_SQL: &str = r#"
SELECT n.nspname::text, c.relname::text, a.attname::text,
       format_type(a.atttypid, a.atttypmod),
       bt.typname::text, bt.typtype::text,
       coalesce(et.typname::text, ''), coalesce(et.typtype::text, ''),
       coalesce((SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(att, n)
                 WHERE i.indrelid = c.oid AND i.indisprimary AND k.att = a.attnum), 0)::int8
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND NOT c.relispartition AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, a.attnum
"#;

async fn tables(conn: &mut Conn, schemas: &[String]) -> BuiltinResult<Vec<Table>> {
    let rows = sqlx::query(TABLES_SQL)
        .bind(schemas)
        .fetch_all(&mut conn.conn)
        .await
        .map_err(|e| conn.err("cannot list the tables", e))?;
    let mut tables: Vec<Table> = Vec::new();
    let mut keys: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    for row in rows {
        let schema: String = row.get(0);
        let name: String = row.get(1);
        let column = PgColumn {
            name: row.get(2),
            sql_type: row.get(3),
            typname: row.get(4),
            typtype: row.get(5),
            elem: row.get(6),
            elem_typtype: row.get(7),
        };
        let key_pos: i64 = row.get(8);
        if key_pos > 0 {
            keys.entry((schema.clone(), name.clone()))
                .or_default()
                .push((key_pos, column.name.clone()));
        }
        match tables.last_mut() {
            Some(t) if t.schema == schema && t.name == name => t.columns.push(column),
            _ => tables.push(Table {
                schema,
                name,
                columns: vec![column],
                primary_key: Vec::new(),
            }),
        }
    }
    for t in &mut tables {
        if let Some(mut k) = keys.remove(&(t.schema.clone(), t.name.clone())) {
            k.sort();
            t.primary_key = k.into_iter().map(|(_, c)| c).collect();
        }
    }
    Ok(tables)
}

/// Names that usually mark the column a row's last change is kept in.
const CURSOR_NAMES: &[&str] = &[
    "updated_at",
    "updatedat",
    "modified_at",
    "last_modified",
    "last_updated",
    "updated",
    "modified",
];

fn stream_of(t: &Table) -> AirbyteStream {
    let properties: serde_json::Map<String, Value> = t
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.schema()))
        .collect();
    let mut s = AirbyteStream::new(&t.name, json!({"type": "object", "properties": properties}));
    s.namespace = Some(t.schema.clone());
    s.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
    s.source_defined_cursor = Some(false);
    let candidates: Vec<&PgColumn> = t.columns.iter().filter(|c| c.cursor_candidate()).collect();
    // The default cursor: a column named like a last-change time, else none
    // (a configured catalog then names one).
    if let Some(c) = candidates
        .iter()
        .find(|c| CURSOR_NAMES.contains(&c.name.to_ascii_lowercase().as_str()))
    {
        s.default_cursor_field = vec![c.name.clone()];
    }
    if !t.primary_key.is_empty() {
        s.source_defined_primary_key = t.primary_key.iter().map(|k| vec![k.clone()]).collect();
    }
    s.is_resumable = Some(false);
    s.extra.insert(
        "x-cursor-candidates".into(),
        json!(candidates.iter().map(|c| &c.name).collect::<Vec<_>>()),
    );
    s
}

/// A schema `schemas` names, as the server knows it.
enum SchemaProblem {
    Missing(String),
    NoUsage(String),
}

/// What is wrong with the schemas a source is to read, if anything. A
/// schema that does not exist (or cannot be used) is a wrong setting, not
/// an empty one: its tables would silently be no streams.
async fn schema_problems(conn: &mut Conn, schemas: &[String]) -> BuiltinResult<Vec<SchemaProblem>> {
    let found: Vec<(String, bool)> = sqlx::query_as(
        "SELECT nspname::text, has_schema_privilege(oid, 'USAGE') FROM pg_namespace \
         WHERE nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(&mut conn.conn)
    .await
    .map_err(|e| conn.err("cannot list the schemas", e))?;
    Ok(schemas
        .iter()
        .filter_map(|s| match found.iter().find(|(name, _)| name == s) {
            None => Some(SchemaProblem::Missing(s.clone())),
            Some((_, false)) => Some(SchemaProblem::NoUsage(s.clone())),
            Some((_, true)) => None,
        })
        .collect())
}

/// Fails with what to do when a schema in `schemas` cannot be read.
pub(super) async fn check_schemas(conn: &mut Conn, schemas: &[String]) -> BuiltinResult<()> {
    let Some(problem) = schema_problems(conn, schemas).await?.into_iter().next() else {
        return Ok(());
    };
    Err(BuiltinError::config(match problem {
        SchemaProblem::Missing(name) => {
            let existing: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace \
                 WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1",
            )
            .fetch_all(&mut conn.conn)
            .await
            .map_err(|e| conn.err("cannot list the schemas", e))?;
            missing_schema_message(&name, &conn.config.target, &existing)
        }
        SchemaProblem::NoUsage(name) => format!(
            "the schema `{name}` in {} cannot be read: the user has no USAGE right on it \
             (GRANT USAGE ON SCHEMA {} TO the user); check `schemas`",
            conn.config.target,
            ident(&name)
        ),
    }))
}

fn missing_schema_message(name: &str, target: &str, existing: &[String]) -> String {
    let like = existing.iter().find(|e| e.eq_ignore_ascii_case(name));
    let known = match like {
        Some(e) => format!("there is `{e}`: schema names are case-sensitive"),
        None if existing.is_empty() => "it has no schemas".into(),
        None if existing.len() > 20 => format!("its schemas include {}", existing[..20].join(", ")),
        None => format!("its schemas: {}", existing.join(", ")),
    };
    format!("the schema `{name}` does not exist in {target} ({known}); check `schemas`")
}

pub(super) async fn discover(config: &Config) -> BuiltinResult<AirbyteCatalog> {
    let mut conn = Conn::open(config).await?;
    check_schemas(&mut conn, &config.schemas()).await?;
    let tables = tables(&mut conn, &config.schemas()).await?;
    conn.close().await;
    Ok(AirbyteCatalog {
        streams: tables.iter().map(stream_of).collect(),
        extra: Extra::new(),
    })
}

pub(super) async fn read(
    config: &Config,
    catalog: &ConfiguredAirbyteCatalog,
    state: Option<&Value>,
    out: &mut Output,
) -> BuiltinResult<()> {
    let state = match state {
        Some(v) => StateSnapshot::from_file_value(v.clone())
            .map_err(|e| BuiltinError::config(format!("invalid state: {e}")))?,
        None => None,
    };
    let mut conn = Conn::open(config).await?;
    let mut schemas: Vec<String> = catalog
        .streams
        .iter()
        .filter_map(|s| s.stream.namespace.clone())
        .collect();
    schemas.sort();
    schemas.dedup();
    if schemas.is_empty() {
        schemas = config.schemas();
    }
    let all = tables(&mut conn, &schemas).await?;
    let missing = schema_problems(&mut conn, &schemas).await?;
    // Every stream is matched to its table, columns and cursor before any
    // is read: a catalog the database no longer fits fails the read whole,
    // before a destination is sent anything.
    let mut plan = Vec::with_capacity(catalog.streams.len());
    for configured in &catalog.streams {
        plan.push(plan_stream(configured, &all, &missing, state.as_ref())?);
    }
    for Planned {
        configured,
        table,
        columns,
        cursor,
    } in plan
    {
        let descriptor = configured.stream.descriptor();
        let select: Vec<String> = columns.iter().map(|c| c.select_text()).collect();
        let row = format!("SELECT {} FROM {} s", select.join(", "), table.qualified());
        let json = RowJson::new(&columns);
        let mut scratch: Vec<u8> = Vec::with_capacity(4096);
        out.stream_status(&descriptor, StreamStatus::Started)?;
        out.stream_status(&descriptor, StreamStatus::Running)?;
        let mut w = RecordWriter::new(&descriptor);
        if let Some((cursor_name, cursor, saved)) = cursor {
            let col = format!("s.{}", ident(&cursor.name));
            // The count and the read see one snapshot, so "every row at the
            // saved value was sent" is judged on the rows the read sees.
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let filter = match &saved {
                Some(s) => {
                    let value = format!("{}::{}", literal(&s.value), cursor.sql_type);
                    let op = tie_operator(&mut conn, table, &col, &value, s.count).await?;
                    if op == ">=" {
                        out.log(
                            crate::protocol::LogLevel::Info,
                            format!(
                                "Stream {descriptor}: reading again the rows whose {cursor_name} \
                                 is the saved {} (rows may have been added at that value since).",
                                s.value
                            ),
                        )?;
                    }
                    format!(" WHERE {col} {op} {value}")
                }
                None => String::new(),
            };
            // Rows the destination takes as they are go in binary, the
            // cursor's text as a last field that is not handed over.
            let handed = handed_over(out, &descriptor, &columns, &conn);
            let (list, format) = match &handed {
                Some((_, binary)) => (binary.join(", "), Format::Binary),
                None => (select.join(", "), Format::Text),
            };
            let query = RowQuery {
                select: format!("SELECT {list}, {col}::text FROM {} s", table.qualified()),
                format,
            };
            let sql = query.copy(&format!("{filter} ORDER BY {col} NULLS FIRST"));
            if handed.is_some() {
                log_handed_over(out, &descriptor)?;
            }
            let mut rows = handed.map(|(h, _)| Handing::new(h, &descriptor));
            let every = config.checkpoint_every();
            // The last cursor value sent, and how many rows had it.
            let mut last: Option<Vec<u8>> = None;
            let mut ties = 0u64;
            let mut since = 0u64;
            let mut cursor: Vec<u8> = Vec::new();
            let mut tracker = |line: &[u8], w: &mut RecordWriter, out: &mut Output| {
                scratch.clear();
                let has_cursor = match &rows {
                    None => json.render(line, &mut scratch, Some(&mut cursor))?,
                    Some(_) => split_cursor(line, &mut scratch, &mut cursor)?,
                };
                let changed = has_cursor && last.as_deref() != Some(&cursor[..]);
                // A state only where the cursor changes: every row at the
                // state's value has been sent, and the count says so.
                if since >= every && changed {
                    if let Some(prev) = &last {
                        // The rows before the state go before it.
                        if let Some(r) = &mut rows {
                            r.hand_over(out)?;
                        }
                        out.state(cursor_state(&descriptor, cursor_name, prev, ties)?)?;
                    }
                    since = 0;
                }
                match &mut rows {
                    None => w.record(&scratch, out)?,
                    Some(r) => r.push(&scratch, out)?,
                }
                since += 1;
                if changed {
                    ties = 0;
                    match &mut last {
                        Some(l) => {
                            l.clear();
                            l.extend_from_slice(&cursor);
                        }
                        None => last = Some(cursor.clone()),
                    }
                }
                if has_cursor {
                    ties += 1;
                }
                Ok(())
            };
            copy_out_all(
                std::slice::from_mut(&mut conn),
                &[sql],
                format,
                &mut w,
                out,
                &mut tracker,
            )
            .await?;
            if let Some(r) = &mut rows {
                r.hand_over(out)?;
            }
            conn.execute("COMMIT").await?;
            // The final state, also when nothing was new.
            let final_state = match &last {
                Some(text) => cursor_state(&descriptor, cursor_name, text, ties)?,
                None => StateMessage::stream(
                    descriptor.clone(),
                    state_value(
                        &descriptor,
                        cursor_name,
                        saved.as_ref().map(|s| (s.value.as_str(), s.count)),
                    ),
                ),
            };
            out.state(final_state)?;
        } else if let Some((handoff, select)) = handed_over(out, &descriptor, &columns, &conn) {
            // The destination takes this stream's rows as they are: read
            // in binary, cast to its columns, no JSON either way.
            log_handed_over(out, &descriptor)?;
            let query = RowQuery {
                select: format!("SELECT {} FROM {} s", select.join(", "), table.qualified()),
                format: Format::Binary,
            };
            let mut rows = Handing::new(handoff, &descriptor);
            let mut hand =
                |tuple: &[u8], _: &mut RecordWriter, out: &mut Output| rows.push(tuple, out);
            read_full(config, &mut conn, table, &query, &mut w, out, &mut hand).await?;
            rows.hand_over(out)?;
        } else {
            let mut plain = |line: &[u8], w: &mut RecordWriter, out: &mut Output| {
                scratch.clear();
                json.render(line, &mut scratch, None)?;
                w.record(&scratch, out)
            };
            let query = RowQuery {
                select: row,
                format: Format::Text,
            };
            read_full(config, &mut conn, table, &query, &mut w, out, &mut plain).await?;
        }
        out.stream_status(&descriptor, StreamStatus::Complete)?;
    }
    conn.close().await;
    out.flush()
}

/// One configured stream, matched to what the database has.
struct Planned<'a> {
    configured: &'a ConfiguredAirbyteStream,
    table: &'a Table,
    /// The columns the catalog selects, in the table's order.
    columns: Vec<&'a PgColumn>,
    /// Incremental reads: the cursor's name, column and saved state.
    cursor: Option<(&'a str, &'a PgColumn, Option<SavedCursor>)>,
}

fn plan_stream<'a>(
    configured: &'a ConfiguredAirbyteStream,
    all: &'a [Table],
    missing: &[SchemaProblem],
    state: Option<&StateSnapshot>,
) -> BuiltinResult<Planned<'a>> {
    let stream = &configured.stream;
    let descriptor = stream.descriptor();
    let table = all
        .iter()
        .find(|t| {
            t.name == stream.name && stream.namespace.as_deref().is_none_or(|ns| ns == t.schema)
        })
        .ok_or_else(|| {
            let schema = missing.iter().find_map(|p| match p {
                SchemaProblem::Missing(s) | SchemaProblem::NoUsage(s)
                    if stream.namespace.as_deref() == Some(s.as_str()) =>
                {
                    Some(s)
                }
                _ => None,
            });
            BuiltinError::config(match schema {
                Some(s) => format!(
                    "stream `{descriptor}`: the schema `{s}` does not exist or cannot be used; \
                     run discover again"
                ),
                None => format!(
                    "stream `{descriptor}`: there is no such table or view (or no SELECT right on it); \
                     run discover again"
                ),
            })
        })?;
    let selected: Option<Vec<&str>> = stream
        .json_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect());
    let columns: Vec<&PgColumn> = table
        .columns
        .iter()
        .filter(|c| {
            selected
                .as_ref()
                .is_none_or(|s| s.contains(&c.name.as_str()))
        })
        .collect();
    if columns.is_empty() {
        return Err(BuiltinError::config(format!(
            "stream `{descriptor}` selects none of the columns of {}",
            table.qualified()
        )));
    }
    let cursor = if configured.sync_mode == SyncMode::Incremental {
        let cursor_name = configured.cursor_field.first().ok_or_else(|| {
            BuiltinError::config(format!(
                "stream `{descriptor}` is incremental but names no cursor_field"
            ))
        })?;
        let cursor = table.column(cursor_name).ok_or_else(|| {
            BuiltinError::config(format!(
                "stream `{descriptor}`: the cursor `{cursor_name}` is not a column of {}",
                table.qualified()
            ))
        })?;
        if !cursor.cursor_candidate() {
            return Err(BuiltinError::config(format!(
                "stream `{descriptor}`: the column `{cursor_name}` ({}) cannot be a cursor; \
                 choose a number, text, date or timestamp column",
                cursor.sql_type
            )));
        }
        let saved = saved_cursor(state, &descriptor)?;
        Some((cursor_name.as_str(), cursor, saved))
    } else {
        None
    };
    Ok(Planned {
        configured,
        table,
        columns,
        cursor,
    })
}

/// What is done with each line of a COPY's output.
type EachLine<'a> = dyn FnMut(&[u8], &mut RecordWriter, &mut Output) -> BuiltinResult<()> + 'a;

/// What a COPY sends: lines of text, or binary tuples (after a header,
/// until an end marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Binary,
}

/// One connection's COPY output, split into rows whatever the messages'
/// bounds: what is left of a row at a message's end waits in `carry`.
struct Splitter {
    format: Format,
    carry: Vec<u8>,
    /// Binary: the header is still to come.
    header: bool,
}

impl Splitter {
    fn new(format: Format) -> Self {
        Splitter {
            format,
            carry: Vec::new(),
            header: format == Format::Binary,
        }
    }

    /// Hands each whole row of `chunk` (after what was carried) to `row`;
    /// returns how many.
    fn split(
        &mut self,
        chunk: &[u8],
        row: &mut impl FnMut(&[u8]) -> BuiltinResult<()>,
    ) -> BuiltinResult<u64> {
        let mut carry = std::mem::take(&mut self.carry);
        let buf: &[u8] = if carry.is_empty() {
            chunk
        } else {
            carry.extend_from_slice(chunk);
            &carry
        };
        let (n, used) = match self.format {
            Format::Text => {
                let mut n = 0;
                let mut at = 0;
                while let Some(i) = memchr::memchr(b'\n', &buf[at..]) {
                    row(&buf[at..at + i])?;
                    at += i + 1;
                    n += 1;
                }
                (n, at)
            }
            Format::Binary => self.tuples(buf, row)?,
        };
        let rest = buf[used..].to_vec();
        self.carry = rest;
        Ok(n)
    }

    fn tuples(
        &mut self,
        buf: &[u8],
        row: &mut impl FnMut(&[u8]) -> BuiltinResult<()>,
    ) -> BuiltinResult<(u64, usize)> {
        let odd = || BuiltinError::system("PostgreSQL sent binary COPY data sluice cannot read");
        let mut at = 0;
        if self.header {
            // Signature, flags, the extension's length, the extension.
            let Some(fixed) = buf.get(..19) else {
                return Ok((0, 0));
            };
            if fixed[..11] != super::binary::HEADER[..11] {
                return Err(odd());
            }
            let ext = u32::from_be_bytes([fixed[15], fixed[16], fixed[17], fixed[18]]) as usize;
            if buf.len() < 19 + ext {
                return Ok((0, 0));
            }
            at = 19 + ext;
            self.header = false;
        }
        let mut n = 0;
        loop {
            match super::binary::tuple_end(buf, at) {
                Ok(Some((_, end))) => {
                    row(&buf[at..end])?;
                    at = end;
                    n += 1;
                }
                Ok(None) => return Ok((n, at)),
                // The end marker: nothing may follow.
                Err(-1) => return Ok((n, buf.len())),
                Err(_) => return Err(odd()),
            }
        }
    }

    fn finish(self, row: &mut impl FnMut(&[u8]) -> BuiltinResult<()>) -> BuiltinResult<()> {
        match self.format {
            Format::Text if !self.carry.is_empty() => row(&self.carry),
            Format::Binary if !self.carry.is_empty() => Err(BuiltinError::system(
                "PostgreSQL's binary COPY data ended inside a row",
            )),
            _ => Ok(()),
        }
    }
}

/// A stream's rows handed to the destination in batches, each announced
/// by a `SLUICE_ROWS` line.
struct Handing {
    handoff: std::sync::Arc<Handoff>,
    stream: StreamDescriptor,
    rows: Vec<u8>,
    count: u64,
    seq: u64,
}

/// Bytes of rows handed over at a time.
const HAND_BYTES: usize = 1 << 20;

impl Handing {
    fn new(handoff: std::sync::Arc<Handoff>, stream: &StreamDescriptor) -> Self {
        Handing {
            handoff,
            stream: stream.clone(),
            rows: Vec::with_capacity(HAND_BYTES + 64 * 1024),
            count: 0,
            seq: 0,
        }
    }

    fn push(&mut self, tuple: &[u8], out: &mut Output) -> BuiltinResult<()> {
        let limit = self.handoff.max_row_bytes;
        if tuple.len() > limit {
            return Err(BuiltinError::system(format!(
                "a row of stream `{}` is {} bytes, longer than the {limit}-byte limit \
                 (raise it with --max-line-size)",
                self.stream,
                tuple.len()
            )));
        }
        self.rows.extend_from_slice(tuple);
        self.count += 1;
        if self.rows.len() >= HAND_BYTES {
            self.hand_over(out)?;
        }
        Ok(())
    }

    /// Hands what is gathered over, then announces it; the line is flushed
    /// at once, as the destination waits for it before it takes the batch
    /// (and the source, when batches wait, for the destination).
    fn hand_over(&mut self, out: &mut Output) -> BuiltinResult<()> {
        if self.count == 0 {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(HAND_BYTES + 64 * 1024));
        let line = RowsLine {
            stream: self.stream.name.clone(),
            namespace: self.stream.namespace.clone(),
            count: std::mem::take(&mut self.count),
            bytes: rows.len() as u64,
            emitted_at: now_millis(),
            seq: self.seq,
        };
        if !self.handoff.send(HandedRows {
            seq: self.seq,
            rows,
        }) {
            return Err(BuiltinError::system("the destination stopped taking rows"));
        }
        self.seq += 1;
        out.raw(&line.to_line())?;
        out.flush()
    }
}

fn log_handed_over(out: &mut Output, stream: &StreamDescriptor) -> BuiltinResult<()> {
    out.log(
        crate::protocol::LogLevel::Info,
        format!(
            "Stream {stream}: rows go to the destination in PostgreSQL's binary format, \
             without JSON."
        ),
    )
}

/// A binary tuple whose last field is the cursor's text: the tuple without
/// it into `row`, the text into `cursor`; returns whether it is not NULL.
fn split_cursor(tuple: &[u8], row: &mut Vec<u8>, cursor: &mut Vec<u8>) -> BuiltinResult<bool> {
    let odd = || BuiltinError::system("PostgreSQL sent a row without its cursor");
    let fields = match tuple.get(..2) {
        Some(&[a, b]) => i16::from_be_bytes([a, b]),
        _ => return Err(odd()),
    };
    if fields < 1 {
        return Err(odd());
    }
    let at = super::binary::fields_end(tuple, 2, fields as usize - 1).ok_or_else(odd)?;
    let len = tuple.get(at..at + 4).ok_or_else(odd)?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    row.extend_from_slice(&(fields - 1).to_be_bytes());
    row.extend_from_slice(&tuple[2..at]);
    cursor.clear();
    if len < 0 {
        return Ok(false);
    }
    cursor.extend_from_slice(&tuple[at + 4..]);
    Ok(true)
}

/// The handoff and the select list of a stream whose rows the
/// destination takes as they are, in its column order; None when it takes
/// them as records (or any column lacks a binary form of the same value).
fn handed_over(
    out: &Output,
    stream: &StreamDescriptor,
    columns: &[&PgColumn],
    conn: &Conn,
) -> Option<(std::sync::Arc<Handoff>, Vec<String>)> {
    let handoff = out.handoff.clone()?;
    let accepted = handoff.accepted(stream, &|| out.cancelled())?;
    let infinity = conn.conn.server_version_num().is_some_and(|v| v >= 140_000);
    let select = accepted
        .iter()
        .map(|(name, sql)| {
            columns
                .iter()
                .find(|c| &c.name == name)?
                .select_binary(sql, infinity)
        })
        .collect::<Option<Vec<String>>>()?;
    (accepted.len() == columns.len()).then_some((handoff, select))
}

/// Runs one `COPY ... TO STDOUT` per connection at once and hands each
/// line to `each` as it comes, from whichever connection sent it.
async fn copy_out_all(
    conns: &mut [Conn],
    sqls: &[String],
    format: Format,
    w: &mut RecordWriter,
    out: &mut Output,
    each: &mut EachLine<'_>,
) -> BuiltinResult<()> {
    let masker = conns[0].config.clone();
    let mut streams = Vec::new();
    for (i, (conn, sql)) in conns.iter_mut().zip(sqls).enumerate() {
        let stream = conn.conn.copy_out_raw(sql).await.map_err(|e| {
            BuiltinError::system(format!(
                "{}: {}",
                super::first_line(sql),
                masker.mask(&e.to_string())
            ))
        })?;
        streams.push(stream.map(move |chunk| (i, chunk)));
    }
    // One connection needs no merging (which costs per row).
    let mut all = if streams.len() == 1 {
        streams.pop().expect("one stream").boxed()
    } else {
        futures_util::stream::select_all(streams).boxed()
    };
    // PostgreSQL sends a row per message, but nothing here relies on it.
    let mut splitters: Vec<Splitter> = sqls.iter().map(|_| Splitter::new(format)).collect();
    let mut n = 0u64;
    while let Some((from, chunk)) = all.next().await {
        let chunk = chunk.map_err(|e| {
            BuiltinError::system(format!(
                "reading the COPY failed: {}",
                masker.mask(&e.to_string())
            ))
        })?;
        let before = n;
        n += splitters[from].split(&chunk, &mut |r| each(r, w, out))?;
        if n / 1024 != before / 1024 {
            out.check_cancel()?;
            w.refresh_clock();
        }
    }
    for s in splitters {
        s.finish(&mut |r| each(r, w, out))?;
    }
    Ok(())
}

/// A full refresh's rows: the query, and the format COPY sends them in.
struct RowQuery {
    select: String,
    format: Format,
}

impl RowQuery {
    /// The COPY of the query's rows, `filter` (` WHERE ...`) added.
    fn copy(&self, filter: &str) -> String {
        let options = match self.format {
            Format::Text => "",
            Format::Binary => " (FORMAT binary)",
        };
        format!("COPY ({}{filter}) TO STDOUT{options}", self.select)
    }
}

/// Reads a full refresh, in key ranges at once when the table is large.
async fn read_full(
    config: &Config,
    conn: &mut Conn,
    table: &Table,
    query: &RowQuery,
    w: &mut RecordWriter,
    out: &mut Output,
    each: &mut EachLine<'_>,
) -> BuiltinResult<()> {
    if !read_chunked(config, conn, table, query, w, out, each).await? {
        let sql = query.copy("");
        copy_out_all(
            std::slice::from_mut(conn),
            &[sql],
            query.format,
            w,
            out,
            each,
        )
        .await?;
    }
    Ok(())
}

/// Splits a full refresh of a large table with a single integer key into
/// key ranges read on `parallel` connections at once, all in one snapshot
/// (exported by the first, imported by the others), so the chunks together
/// are exactly the table at one moment. Returns false (nothing read) when
/// the table is too small or has no such key.
async fn read_chunked(
    config: &Config,
    conn: &mut Conn,
    table: &Table,
    query: &RowQuery,
    w: &mut RecordWriter,
    out: &mut Output,
    each: &mut EachLine<'_>,
) -> BuiltinResult<bool> {
    let parallel = config.max_parallel();
    let [key] = table.primary_key.as_slice() else {
        return Ok(false);
    };
    let Some(key_col) = table.column(key) else {
        return Ok(false);
    };
    if parallel < 2 || !matches!(key_col.typname.as_str(), "int2" | "int4" | "int8") {
        return Ok(false);
    }
    let estimate: f64 =
        sqlx::query_scalar("SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)")
            .bind(table.qualified())
            .fetch_optional(&mut conn.conn)
            .await
            .map_err(|e| conn.err("cannot read the table's size", e))?
            .unwrap_or(0.0);
    if estimate < config.chunk_rows() as f64 {
        return Ok(false);
    }
    let mut conns = vec![Conn::open(config).await?];
    conns[0]
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut conns[0].conn)
        .await
        .map_err(|e| conns[0].err("cannot export a snapshot", e))?;
    let k = format!("s.{}", ident(key));
    let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(&format!(
        "SELECT min({k})::int8, max({k})::int8 FROM {} s",
        table.qualified()
    ))
    .fetch_one(&mut conns[0].conn)
    .await
    .map_err(|e| conns[0].err("cannot read the key range", e))?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        conns.pop().expect("one connection").close().await;
        return Ok(false);
    };
    for _ in 1..parallel {
        let mut c = Conn::open(config).await?;
        c.execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            literal(&snapshot)
        ))
        .await?;
        conns.push(c);
    }
    out.log(
        crate::protocol::LogLevel::Info,
        format!(
            "Reading {}.{} in {parallel} key ranges at once.",
            table.schema, table.name
        ),
    )?;
    let span = (hi as i128 - lo as i128 + 1) as f64 / parallel as f64;
    let sqls: Vec<String> = (0..parallel)
        .map(|i| {
            let from = lo as i128 + (span * i as f64) as i128;
            let until = lo as i128 + (span * (i + 1) as f64) as i128;
            let filter = if i + 1 == parallel {
                format!("{k} >= {from}")
            } else {
                format!("{k} >= {from} AND {k} < {until}")
            };
            query.copy(&format!(" WHERE {filter}"))
        })
        .collect();
    copy_out_all(&mut conns, &sqls, query.format, w, out, each).await?;
    for c in conns {
        c.close().await;
    }
    Ok(true)
}

/// Turns a row of COPY text into a JSON object, field by field.
struct RowJson {
    /// `{"name":` for the first column, `,"name":` for the others.
    keys: Vec<Vec<u8>>,
    kinds: Vec<JsonKind>,
}

impl RowJson {
    fn new(columns: &[&PgColumn]) -> Self {
        let keys = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut k = if i == 0 { b"{".to_vec() } else { b",".to_vec() };
                k.extend_from_slice(json!(c.name).to_string().as_bytes());
                k.push(b':');
                k
            })
            .collect();
        RowJson {
            keys,
            kinds: columns.iter().map(|c| c.json_kind()).collect(),
        }
    }

    /// Writes the row's JSON object to `out`. With `cursor`, the row has one
    /// more field, the cursor's text, unescaped into it; returns whether it
    /// is not NULL.
    fn render(
        &self,
        line: &[u8],
        out: &mut Vec<u8>,
        cursor: Option<&mut Vec<u8>>,
    ) -> BuiltinResult<bool> {
        let mut fields = Fields(Some(line));
        let short = || BuiltinError::system("PostgreSQL sent a row with fewer fields than columns");
        for (key, kind) in self.keys.iter().zip(&self.kinds) {
            let f = fields.next().ok_or_else(short)?;
            out.extend_from_slice(key);
            if f == b"\\N" {
                out.extend_from_slice(b"null");
                continue;
            }
            match kind {
                JsonKind::Number => out.extend_from_slice(f),
                JsonKind::Float => match f {
                    b"NaN" | b"Infinity" | b"-Infinity" => {
                        out.push(b'"');
                        out.extend_from_slice(f);
                        out.push(b'"');
                    }
                    _ => out.extend_from_slice(f),
                },
                JsonKind::Bool => out.extend_from_slice(if f == b"t" { b"true" } else { b"false" }),
                JsonKind::String => json_string(f, out),
                JsonKind::Timestamp | JsonKind::TimestampTz => {
                    timestamp(f, *kind == JsonKind::TimestampTz, out)
                }
                JsonKind::Json => copy_unescape(f, out),
            }
        }
        if self.keys.is_empty() {
            out.push(b'{');
        }
        out.push(b'}');
        match cursor {
            None => Ok(true),
            Some(c) => {
                c.clear();
                let f = fields.next().ok_or_else(short)?;
                if f == b"\\N" {
                    return Ok(false);
                }
                copy_unescape(f, c);
                Ok(true)
            }
        }
    }
}

/// A timestamp's COPY text as a JSON string in the shape the schema
/// declares: `T` between date and time (the first space: years may have
/// more than four digits), and a zone of hours only (`+00`) given its
/// minutes, as ISO 8601 writes it, before the era (` BC`). Infinities go
/// as they are.
fn timestamp(f: &[u8], zoned: bool, out: &mut Vec<u8>) {
    let (body, era) = match f.strip_suffix(b" BC") {
        Some(body) => (body, &b" BC"[..]),
        None => (f, &b""[..]),
    };
    out.push(b'"');
    let start = out.len();
    out.extend_from_slice(body);
    if let Some(sep) = memchr::memchr(b' ', body) {
        out[start + sep] = b'T';
        let time = &body[sep + 1..];
        if zoned {
            if let Some(z) = time.iter().rposition(|&b| b == b'+' || b == b'-') {
                if time.len() - z == 3 {
                    out.extend_from_slice(b":00");
                }
            }
        }
    }
    out.extend_from_slice(era);
    out.push(b'"');
}

/// The fields of a row of COPY text, between its tabs.
struct Fields<'a>(Option<&'a [u8]>);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.0?;
        match find_byte(rest, b'\t') {
            Some(i) => {
                self.0 = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => self.0.take(),
        }
    }
}

/// COPY text's escapes undone.
fn copy_unescape(f: &[u8], out: &mut Vec<u8>) {
    let mut rest = f;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        let Some(&e) = rest.get(i + 1) else {
            out.push(b'\\');
            return;
        };
        out.push(match e {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            other => other,
        });
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
}

/// A COPY text field as a JSON string: COPY's escapes become JSON's, and
/// what JSON must escape is escaped.
fn json_string(f: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = f;
    while let Some(i) = string_stop(rest) {
        out.extend_from_slice(&rest[..i]);
        let c = rest[i];
        let next = rest.get(i + 1).copied();
        let (esc, used): (&[u8], usize) = match (c, next) {
            (b'\\', Some(e)) => {
                let esc: &[u8] = match e {
                    b'n' => b"\\n",
                    b'r' => b"\\r",
                    b't' => b"\\t",
                    b'b' => b"\\b",
                    b'f' => b"\\f",
                    b'v' => b"\\u000b",
                    b'\\' => b"\\\\",
                    b'"' => b"\\\"",
                    _ => &rest[i + 1..i + 2],
                };
                (esc, 2)
            }
            (b'"', _) => (b"\\\"", 1),
            (b'\\', None) => (b"\\\\", 1),
            (control, _) => {
                out.extend_from_slice(format!("\\u{control:04x}").as_bytes());
                rest = &rest[i + 1..];
                continue;
            }
        };
        out.extend_from_slice(esc);
        rest = &rest[i + used..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Wraps JSON objects into RECORD lines.
struct RecordWriter {
    prefix: Vec<u8>,
    line: Vec<u8>,
    stream: Option<StreamDescriptor>,
}

impl RecordWriter {
    fn new(stream: &StreamDescriptor) -> Self {
        let mut w = RecordWriter {
            prefix: Vec::new(),
            line: Vec::with_capacity(4096),
            stream: None,
        };
        w.set_prefix(stream);
        w
    }

    fn set_prefix(&mut self, stream: &StreamDescriptor) {
        let mut p = record_head(stream);
        p.extend_from_slice(format!("\"emitted_at\":{},\"data\":", now_millis()).as_bytes());
        self.prefix = p;
        self.stream = Some(stream.clone());
    }

    /// `emitted_at` is read once per batch of rows, not per row.
    fn refresh_clock(&mut self) {
        if let Some(s) = self.stream.take() {
            self.set_prefix(&s);
        }
    }

    fn record(&mut self, data: &[u8], out: &mut Output) -> BuiltinResult<()> {
        self.line.clear();
        self.line.extend_from_slice(&self.prefix);
        self.line.extend_from_slice(data);
        self.line.extend_from_slice(b"}}\n");
        out.raw(&self.line)
    }
}

/// An incremental stream's saved cursor: its value, and how many rows
/// with that value were sent (`cursor_record_count`, as Airbyte's
/// source-postgres keeps it; `None` in a state from before sluice kept it).
#[derive(Debug, PartialEq)]
struct SavedCursor {
    value: String,
    count: Option<u64>,
}

fn saved_cursor(
    state: Option<&StateSnapshot>,
    stream: &StreamDescriptor,
) -> BuiltinResult<Option<SavedCursor>> {
    let Some(s) = state.and_then(|s| s.stream_state(stream)) else {
        return Ok(None);
    };
    let value = match s.get("cursor") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(c)) => c.clone(),
        Some(other) => other.to_string(),
    };
    // Airbyte writes 0 when it does not know the count: as good as none.
    let count = s
        .get("cursor_record_count")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0);
    Ok(Some(SavedCursor { value, count }))
}

/// `>` when every row at the saved cursor value was sent before, else
/// `>=`: rows committed after a sync read, with the cursor value it ended
/// at (several rows with one `updated_at`), would never be sent by `>`.
/// Re-sending the tie rows is at-least-once, Airbyte's contract; the count
/// avoids it when nothing was added at that value. A state without a count
/// (sluice's before it kept one) re-sends them once.
async fn tie_operator(
    conn: &mut Conn,
    table: &Table,
    col: &str,
    value: &str,
    saved: Option<u64>,
) -> BuiltinResult<&'static str> {
    let Some(saved) = saved else {
        return Ok(">=");
    };
    let sql = format!(
        "SELECT count(*)::int8 FROM {} s WHERE {col} = {value}",
        table.qualified()
    );
    let now: i64 = sqlx::query_scalar(&sql)
        .fetch_one(&mut conn.conn)
        .await
        .map_err(|e| conn.err("cannot count the rows at the saved cursor", e))?;
    Ok(if u64::try_from(now) == Ok(saved) {
        ">"
    } else {
        ">="
    })
}

/// Airbyte source-postgres's cursor state, so a state moves between the two.
fn state_value(
    stream: &StreamDescriptor,
    cursor_field: &str,
    cursor: Option<(&str, Option<u64>)>,
) -> Value {
    let mut v = json!({
        "state_type": "cursor_based",
        "version": 2,
        "stream_name": stream.name,
        "stream_namespace": stream.namespace,
        "cursor_field": [cursor_field],
        "cursor": cursor.map(|(c, _)| c),
    });
    if let Some((_, Some(count))) = cursor {
        v["cursor_record_count"] = json!(count);
    }
    v
}

fn cursor_state(
    stream: &StreamDescriptor,
    cursor_field: &str,
    text: &[u8],
    count: u64,
) -> BuiltinResult<StateMessage> {
    let text = std::str::from_utf8(text).map_err(|_| {
        BuiltinError::system(format!("stream `{stream}`: a cursor value is not UTF-8"))
    })?;
    Ok(StateMessage::stream(
        stream.clone(),
        state_value(stream, cursor_field, Some((text, Some(count)))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of COPY's output come whole whatever the messages' bounds, in
    /// either format; a binary stream cut inside a row is an error.
    #[test]
    fn copy_output_splits_into_rows_across_any_message_bounds() {
        let mut binary = super::super::binary::HEADER.to_vec();
        // A header extension of 3 bytes, which must be skipped.
        binary[15..19].copy_from_slice(&3u32.to_be_bytes());
        binary.extend_from_slice(b"ext");
        let tuples: Vec<Vec<u8>> = vec![
            [
                &2i16.to_be_bytes()[..],
                &1i32.to_be_bytes(),
                b"a",
                &(-1i32).to_be_bytes(),
            ]
            .concat(),
            [
                &2i16.to_be_bytes()[..],
                &0i32.to_be_bytes(),
                &3i32.to_be_bytes(),
                b"\n\tz",
            ]
            .concat(),
            [&0i16.to_be_bytes()[..]].concat(),
        ];
        for t in &tuples {
            binary.extend_from_slice(t);
        }
        binary.extend_from_slice(&(-1i16).to_be_bytes());
        let text = b"1\ta\n2\t\\N\n3\tlast".to_vec();
        let text_rows: Vec<Vec<u8>> =
            vec![b"1\ta".to_vec(), b"2\t\\N".to_vec(), b"3\tlast".to_vec()];
        for (format, stream, expected) in [
            (Format::Binary, &binary, &tuples),
            (Format::Text, &text, &text_rows),
        ] {
            for a in 0..=stream.len() {
                for b in a..=stream.len() {
                    let mut got: Vec<Vec<u8>> = Vec::new();
                    let mut s = Splitter::new(format);
                    let mut n = 0;
                    for part in [&stream[..a], &stream[a..b], &stream[b..]] {
                        n += s
                            .split(part, &mut |r| {
                                got.push(r.to_vec());
                                Ok(())
                            })
                            .unwrap();
                    }
                    s.finish(&mut |r| {
                        got.push(r.to_vec());
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(&got, expected, "{format:?} cut at {a} and {b}");
                    if format == Format::Binary {
                        assert_eq!(n, 3);
                    }
                }
            }
        }
        let mut s = Splitter::new(Format::Binary);
        s.split(&binary[..binary.len() - 5], &mut |_| Ok(()))
            .unwrap();
        assert!(s.finish(&mut |_| Ok(())).is_err());
        let mut s = Splitter::new(Format::Binary);
        assert!(s
            .split(b"PGCOPY\n\xff\r\n\x01nonsense...", &mut |_| Ok(()))
            .is_err());
    }

    fn col(name: &str, typname: &str, elem: &str) -> PgColumn {
        PgColumn {
            name: name.into(),
            sql_type: typname.into(),
            typname: typname.into(),
            typtype: "b".into(),
            elem: elem.into(),
            elem_typtype: "b".into(),
        }
    }

    #[test]
    fn copy_text_rows_become_json_objects() {
        let cols = [
            col("i", "int4", ""),
            col("f", "float8", ""),
            col("b", "bool", ""),
            col("t", "text", ""),
            col("ts", "timestamp", ""),
            col("tz", "timestamptz", ""),
            col("tz2", "timestamptz", ""),
            col("j", "jsonb", ""),
            col("a", "_text", "text"),
            col("n", "numeric", ""),
        ];
        let refs: Vec<&PgColumn> = cols.iter().collect();
        let r = RowJson::new(&refs);
        let line =
            b"-5\tNaN\tt\ta\\tb\\\\c\\n\"q\"\x01\t2024-01-02 03:04:05.5\t2024-01-02 03:04:05+00\t\
2024-01-02 03:04:05+05:30\t{\"k\": \"x\\\\ny\"}\t[\"a\",null]\t\\N\t2024-05-06 00:00:00+00";
        let mut out = Vec::new();
        let mut cursor = Vec::new();
        assert!(r.render(line, &mut out, Some(&mut cursor)).unwrap());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"i": -5, "f": "NaN", "b": true, "t": "a\tb\\c\n\"q\"\u{1}",
                "ts": "2024-01-02T03:04:05.5", "tz": "2024-01-02T03:04:05+00:00",
                "tz2": "2024-01-02T03:04:05+05:30", "j": {"k": "x\ny"},
                "a": ["a", null], "n": null})
        );
        assert_eq!(cursor, b"2024-05-06 00:00:00+00");
        assert!(
            r.render(b"1", &mut Vec::new(), None).is_err(),
            "too few fields"
        );
    }

    #[test]
    fn a_missing_schema_is_named_with_what_the_database_has() {
        let some: Vec<String> = ["public", "Sales"].map(String::from).to_vec();
        assert_eq!(
            missing_schema_message("sales", "u@h:5432/db", &some),
            "the schema `sales` does not exist in u@h:5432/db (there is `Sales`: \
             schema names are case-sensitive); check `schemas`"
        );
        assert_eq!(
            missing_schema_message("x", "u@h:5432/db", &some),
            "the schema `x` does not exist in u@h:5432/db (its schemas: public, Sales); check `schemas`"
        );
        let many: Vec<String> = (0..30).map(|i| format!("s{i:02}")).collect();
        let text = missing_schema_message("x", "t", &many);
        assert!(text.contains("its schemas include s00, s01,"), "{text}");
        assert!(text.contains("s19)") && !text.contains("s20"), "{text}");
    }

    #[test]
    fn timestamps_get_a_t_and_a_full_offset_whatever_their_year_and_era() {
        let render = |f: &str, zoned: bool| {
            let mut out = Vec::new();
            timestamp(f.as_bytes(), zoned, &mut out);
            String::from_utf8(out).unwrap()
        };
        for (text, zoned, json) in [
            ("2024-01-02 03:04:05", false, "2024-01-02T03:04:05"),
            (
                "2024-01-02 03:04:05.5+00",
                true,
                "2024-01-02T03:04:05.5+00:00",
            ),
            ("0001-12-31 10:00:00 BC", false, "0001-12-31T10:00:00 BC"),
            (
                "0001-12-31 10:00:00+00 BC",
                true,
                "0001-12-31T10:00:00+00:00 BC",
            ),
            ("12345-06-07 08:09:10", false, "12345-06-07T08:09:10"),
            (
                "12345-06-07 08:09:10+00",
                true,
                "12345-06-07T08:09:10+00:00",
            ),
            (
                "2024-01-02 03:04:05+05:30",
                true,
                "2024-01-02T03:04:05+05:30",
            ),
            ("infinity", true, "infinity"),
            ("-infinity", false, "-infinity"),
        ] {
            assert_eq!(render(text, zoned), format!("\"{json}\""), "{text}");
        }
    }

    #[test]
    fn copy_text_becomes_the_same_text_in_json() {
        // COPY's text escaping, as PostgreSQL writes it.
        let copy = |t: &str| {
            let mut out = Vec::new();
            for &b in t.as_bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    8 => out.extend_from_slice(b"\\b"),
                    12 => out.extend_from_slice(b"\\f"),
                    11 => out.extend_from_slice(b"\\v"),
                    b => out.push(b),
                }
            }
            out
        };
        for text in [
            "",
            "plain",
            "a longer plain text, more than eight bytes",
            "\"quoted\" and \\back\\slashed\\",
            "tab\tnew\nline\rreturn\u{8}\u{c}\u{b}\u{1}\u{1f}\u{7f}",
            "ünïcödé 🚀 \"é\"",
            "\\",
            "ends with a quote\"",
        ] {
            let mut json = Vec::new();
            json_string(&copy(text), &mut json);
            let back: String = serde_json::from_slice(&json)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)));
            assert_eq!(back, text);
            let mut raw = Vec::new();
            copy_unescape(&copy(text), &mut raw);
            assert_eq!(raw, text.as_bytes());
        }
    }

    #[test]
    fn records_wrap_the_json_verbatim() {
        let (mut out, buf) = Output::capture();
        let mut w = RecordWriter::new(&StreamDescriptor::new(Some("pub\"lic"), "t"));
        w.record(br#"{"a":1,"b":"x\ny"}"#, &mut out).unwrap();
        out.flush().unwrap();
        let line = buf.lock().unwrap().clone();
        let m: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(m["record"]["namespace"], "pub\"lic");
        assert_eq!(m["record"]["data"], json!({"a": 1, "b": "x\ny"}));
        let e = crate::protocol::envelope::scan(line.trim_ascii_end()).unwrap();
        assert_eq!(e.record.unwrap().data, br#"{"a":1,"b":"x\ny"}"#);
    }
}
