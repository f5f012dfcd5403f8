//! Turns one stream's records into rows for COPY: in COPY's binary format
//! when the table's columns are the types sluice writes and every value has
//! a shape the binary writer knows (and, where the load table's
//! `_airbyte_meta` defaults to a row's without changes, the row has none),
//! else as a line of COPY text. Fills Airbyte's columns: a random
//! `_airbyte_raw_id`, `_airbyte_extracted_at` from the record's
//! `emitted_at`, `_airbyte_meta` with the source's changes and the fields
//! nulled here.
//!
//! A value that does not fit its column never fails the row or the batch:
//! it becomes NULL and a change in `_airbyte_meta`.

use super::fields::{FieldIndex, Fields};
use super::plan::Plan;
use super::text::{copy_escaped, encode, write_millis};
use super::{Batch, Columns};
use crate::connector::builtin::postgres::binary::{self, Outcome};
use crate::connector::builtin::postgres::types::ColType;
use crate::connector::builtin::{BuiltinError, BuiltinResult};
use crate::protocol::RecordMetaChange;
use serde::de::DeserializeSeed;
use serde_json::value::RawValue;
use serde_json::Value;
use std::io::Write;

/// Turns records into rows for COPY for one stream.
pub(super) struct Encoder {
    pub(super) index: FieldIndex,
    pub(super) types: Vec<ColType>,
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
    pub(super) whole: bool,
}

impl Encoder {
    pub(super) fn new(p: &Plan, columns: Columns) -> Self {
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
    pub(super) fn set_extracted_at(&mut self, emitted_at: Option<i64>) {
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

    /// Adds a row for each row of `rows`, tuples of COPY's binary format
    /// in this stream's field order and column types (handed over by the
    /// postgres source), each given Airbyte's columns before its own.
    pub(super) fn rows(
        &mut self,
        rows: &[u8],
        emitted_at: i64,
        out: &mut Batch,
    ) -> BuiltinResult<()> {
        let odd = || BuiltinError::system("a batch of rows from the source does not fit the table");
        if !self.binary || self.whole {
            return Err(odd());
        }
        self.set_extracted_at(Some(emitted_at));
        let meta_fields = if self.meta_default { 3 } else { 4 };
        let out = &mut out.binary;
        out.reserve(rows.len() + rows.len() / 4);
        let mut at = 0;
        while at < rows.len() {
            let Ok(Some((fields, end))) = binary::tuple_end(rows, at) else {
                return Err(odd());
            };
            if fields != self.types.len() {
                return Err(odd());
            }
            binary::tuple(meta_fields + fields, out);
            binary::field(&self.uuids.next(), out);
            binary::timestamp_millis(self.extracted_ms.unwrap_or(0), out);
            if !self.meta_default {
                binary::jsonb(&self.clean_meta, out);
            }
            binary::int8(self.generation_id, out);
            out.extend_from_slice(&rows[at + 2..end]);
            at = end;
        }
        Ok(())
    }

    /// Adds one row for the record `data` to `out`.
    pub(super) fn row(
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
    pub(super) fn split<'a>(&self, data: &'a str) -> Vec<Option<&'a str>> {
        if self.whole {
            return vec![serde_json::from_str::<&RawValue>(data)
                .ok()
                .map(RawValue::get)];
        }
        let mut slots: Vec<Option<&str>> = vec![None; self.types.len()];
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
    pub(super) fn encode_row(
        &mut self,
        raw: &[Option<&str>],
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
        raw: &[Option<&str>],
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
            match binary::value(*t, v, out) {
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
    fn text_row(&mut self, raw: &[Option<&str>], source: &[RecordMetaChange], out: &mut Vec<u8>) {
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
                    if !encode(*t, v, out) {
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

/// `_airbyte_meta`: the source's changes to the record, the fields nulled
/// because they did not fit, and the sync.
pub(super) fn meta(source: &[RecordMetaChange], nulled: &[&str], sync_id: Option<i64>) -> String {
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
}
