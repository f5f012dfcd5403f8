//! The reading thread: protocol lines in, rows, states and stream
//! completions out to the writer, in the order they came.
//!
//! Lines are found in the input's buffer and read where they lie. A RECORD
//! line is read fast (`record`): checked whole as JSON, then walked once,
//! its data split straight into the stream's columns; anything else
//! (states, traces, escaped keys, broken lines) goes through the envelope
//! scanner and serde, the careful way. It never talks to PostgreSQL and
//! never emits a state itself: that is the writer's, after the commit.

use super::encode::Encoder;
use super::plan::{plan_of, Plan};
use super::record;
use super::{writer_stopped, Batch, Columns, Op};
use crate::connector::builtin::handoff::{Batch as HandedRows, RowsLine};
use crate::connector::builtin::{BuiltinError, BuiltinResult};
use crate::protocol::envelope::{self, MessageKind};
use crate::protocol::{Message, RecordMeta, RecordMetaChange, StreamStatus, TraceKind};
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender};

/// Bytes of rows sent to the writer at a time.
const BATCH_BYTES: usize = 1 << 20;

/// Reads the protocol lines; sends rows, states and completions in order.
pub(super) fn read_input(
    input: &mut dyn BufRead,
    plans: &[Plan],
    columns: Vec<Columns>,
    rows: Option<&Receiver<HandedRows>>,
    tx: &SyncSender<Op>,
) -> BuiltinResult<()> {
    let mut encoders: Vec<Encoder> = plans
        .iter()
        .zip(columns)
        .map(|(p, c)| Encoder::new(p, c))
        .collect();
    let mut bufs: Vec<Batch> = plans.iter().map(|_| Batch::default()).collect();
    let mut lines = Lines::default();
    lines.each(input, |line| {
        let text = line.trim_ascii();
        if let Some(r) = record::read(text, plans, &encoders) {
            let i = r.plan;
            encoders[i].set_extracted_at(r.emitted_at);
            let changes = source_changes(r.meta);
            encoders[i].encode_row(r.values.as_slice(), &changes, &mut bufs[i]);
            return bufs[i].send(i, BATCH_BYTES, tx);
        }
        careful(text, plans, &mut encoders, &mut bufs, rows, tx)
    })?;
    for (i, b) in bufs.iter_mut().enumerate() {
        b.send(i, 1, tx)?;
    }
    Ok(())
}

/// Splits the input into lines without copying those that lie whole in its
/// buffer; a line across the buffer's end is gathered in `carry`.
#[derive(Default)]
struct Lines {
    carry: Vec<u8>,
}

impl Lines {
    fn each(
        &mut self,
        input: &mut dyn BufRead,
        mut f: impl FnMut(&[u8]) -> BuiltinResult<()>,
    ) -> BuiltinResult<()> {
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let len = buf.len();
            let mut at = 0;
            if !self.carry.is_empty() {
                let Some(n) = memchr::memchr(b'\n', buf) else {
                    self.carry.extend_from_slice(buf);
                    input.consume(len);
                    continue;
                };
                self.carry.extend_from_slice(&buf[..n]);
                f(&self.carry)?;
                self.carry.clear();
                at = n + 1;
            }
            while let Some(n) = memchr::memchr(b'\n', &buf[at..]) {
                f(&buf[at..at + n])?;
                at += n + 1;
            }
            self.carry.extend_from_slice(&buf[at..]);
            input.consume(len);
        }
        if !self.carry.is_empty() {
            f(&self.carry)?;
            self.carry.clear();
        }
        Ok(())
    }
}

/// A line the fast read declined (states, traces, odd or broken lines),
/// read the slower way, which also words the errors.
fn careful(
    text: &[u8],
    plans: &[Plan],
    encoders: &mut [Encoder],
    bufs: &mut [Batch],
    rows: Option<&Receiver<HandedRows>>,
    tx: &SyncSender<Op>,
) -> BuiltinResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    let Ok(env) = envelope::scan(text) else {
        return Ok(());
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
        MessageKind::Rows => {
            // Without a handoff the line is a stray one, like any unknown.
            let Some(rows) = rows else {
                return Ok(());
            };
            let line = RowsLine::parse(text)
                .ok_or_else(|| BuiltinError::system("a SLUICE_ROWS line that cannot be read"))?;
            let i = plan_of(plans, line.namespace.as_deref(), &line.stream).ok_or_else(|| {
                BuiltinError::system(format!(
                    "rows for stream `{}` which is not in the catalog",
                    line.descriptor()
                ))
            })?;
            // Batches come in the order of their lines; one whose line the
            // engine dropped is skipped.
            let batch = loop {
                let b = rows
                    .recv()
                    .map_err(|_| BuiltinError::system("the source stopped handing over rows"))?;
                if b.seq >= line.seq {
                    break b;
                }
            };
            if batch.seq != line.seq {
                return Err(BuiltinError::system(
                    "rows from the source came out of order",
                ));
            }
            encoders[i].rows(&batch.rows, line.emitted_at, &mut bufs[i])?;
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
                return Ok(());
            };
            let (TraceKind::StreamStatus, Some(s)) = (t.kind, t.stream_status) else {
                return Ok(());
            };
            if s.status != StreamStatus::Complete {
                return Ok(());
            }
            let d = &s.stream_descriptor;
            if let Some(i) = plan_of(plans, d.namespace.as_deref(), &d.name) {
                bufs[i].send(i, 1, tx)?;
                tx.send(Op::Complete(i)).map_err(writer_stopped)?;
            }
        }
        _ => {}
    }
    Ok(())
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

/// `emitted_at` as whole milliseconds; not a plausible time (before 1970,
/// after 9999) is None.
pub(super) fn millis(raw: &str) -> Option<i64> {
    let ms = match raw.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => raw.parse::<f64>().ok().filter(|f| f.is_finite())?.trunc() as i64,
    };
    (0..253_402_300_800_000).contains(&ms).then_some(ms)
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

#[cfg(test)]
mod tests {
    use super::super::plan::plans;
    use super::*;
    use crate::connector::builtin::postgres::Config;

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
        let slots = slots.iter().map(|v| v.map(str::to_string)).collect();
        Some((i, emitted_at(line.as_bytes(), r.data), slots))
    }

    #[test]
    fn the_fast_read_reads_records_as_the_careful_path_does() {
        let (plans, encoders) = test_plans();
        let read = |line: &str| {
            record::read(line.as_bytes(), &plans, &encoders).map(|r| {
                let slots = r.values.as_slice().iter().map(|v| v.map(str::to_string));
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
            // Keys of the record's inside its other values are not its own.
            r#"{"type":"RECORD","record":{"stream":"users","meta":{"emitted_at":5,"data":{"id":2}},"data":{"id":1},"emitted_at":7}}"#,
            // The namespace after the data.
            r#"{"type":"RECORD","record":{"stream":"s","data":{"id":3},"namespace":"ns"}}"#,
            // Escapes in values and in the stream's name, nesting, spaces.
            r#"{ "type" : "RECORD" , "record" : { "stream" : "users" , "data" : { "name" : "a\"}\\" , "id" : [ {"x\"" : "]"} ] } } }"#,
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
            r#"{"type":"RECORD","record":{"str\u0065am":"users","data":{"id":4}}}"#,
            r#"{"type":"RECORD","record":{"stream":"u\u0073ers","data":{"id":4}}}"#,
            r#"{"type":"RECORD","record":{"stream":"users","data":{"i\u0064":4}}}"#,
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
}
