//! `devnull`: counts records and discards them, and echoes every state at
//! once. For benchmarks and for trying a source without storing anything.

use super::{Builtin, BuiltinResult, Kind, Output};
use crate::protocol::envelope::{self, MessageKind};
use crate::protocol::{ConfiguredAirbyteCatalog, ConnectorSpecification, Extra, LogLevel};
use serde_json::{json, Value};
use std::io::BufRead;

pub struct DevNull;

impl Builtin for DevNull {
    fn name(&self) -> &'static str {
        "devnull"
    }

    fn kind(&self) -> Kind {
        Kind::Destination
    }

    fn description(&self) -> &'static str {
        "Counts and discards records, confirms every state"
    }

    fn spec(&self) -> ConnectorSpecification {
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": "Devnull Destination Spec",
                "type": "object",
                "properties": {}
            }),
            supports_incremental: None,
            supported_destination_sync_modes: vec![
                crate::protocol::DestinationSyncMode::Append,
                crate::protocol::DestinationSyncMode::Overwrite,
                crate::protocol::DestinationSyncMode::AppendDedup,
            ],
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }

    fn check(&self, _config: &Value) -> BuiltinResult<()> {
        Ok(())
    }

    fn write(
        &self,
        _config: &Value,
        _catalog: &ConfiguredAirbyteCatalog,
        input: &mut dyn BufRead,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        // Only a line that mentions STATE (or escapes something) can be a
        // state: a run of whole lines with neither is counted at once, as
        // records, without being copied or looked at line by line.
        let state = memchr::memmem::Finder::new(b"STATE");
        let mut records: u64 = 0;
        let mut long_line = Vec::new();
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let Some(last) = memchr::memrchr(b'\n', buf) else {
                // No whole line in the buffer: one longer than it, or the
                // last line without its newline.
                long_line.clear();
                input.read_until(b'\n', &mut long_line)?;
                one_line(&long_line, &state, &mut records, out)?;
                continue;
            };
            let lines = &buf[..=last];
            if !may_hold_state(lines, &state) {
                records += memchr::memchr_iter(b'\n', lines).count() as u64;
            } else {
                for line in lines.split_inclusive(|&b| b == b'\n') {
                    one_line(line, &state, &mut records, out)?;
                }
            }
            let used = lines.len();
            input.consume(used);
        }
        out.log(LogLevel::Info, format!("Discarded {records} records."))?;
        out.flush()
    }
}

/// Whether `bytes` mention STATE or escape something: only then can a line
/// among them be a state.
fn may_hold_state(bytes: &[u8], state: &memchr::memmem::Finder<'_>) -> bool {
    state.find(bytes).is_some() || memchr::memchr(b'\\', bytes).is_some()
}

/// One line: counted as a record unless it mentions STATE or escapes
/// something, then echoed at once if it is a state.
fn one_line(
    line: &[u8],
    state: &memchr::memmem::Finder<'_>,
    records: &mut u64,
    out: &mut Output,
) -> BuiltinResult<()> {
    if !may_hold_state(line, state) {
        *records += 1;
        return Ok(());
    }
    match envelope::scan(line.trim_ascii_end()) {
        Ok(e) if e.kind == MessageKind::State => {
            out.raw(line)?;
            out.flush()?;
        }
        Ok(e) if e.kind == MessageKind::Record => *records += 1,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn counts_records_and_echoes_states_in_order_whatever_the_buffer_size() {
        let record = |x: u32| {
            format!(
                r#"{{"type":"RECORD","record":{{"stream":"s","data":{{"x":{x}}},"emitted_at":1}}}}"#
            )
        };
        let state = |c: u32| {
            format!(
                r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"s"}},"stream_state":{{"c":{c}}}}}}}}}"#
            )
        };
        let mut input = String::new();
        let mut want = String::new();
        for i in 0..1300 {
            input.push_str(&record(i));
            input.push('\n');
            // States among the first 300 records only: the rest are
            // a long run of records alone.
            if i < 300 && i % 7 == 0 {
                input.push_str(&state(i));
                input.push('\n');
                want.push_str(&state(i));
                want.push('\n');
            }
        }
        // A record whose data mentions STATE and escapes a quote, and a
        // last record without its newline.
        input.push_str(
            r#"{"type":"RECORD","record":{"stream":"s","data":{"x":"STATE \"x\""},"emitted_at":1}}"#,
        );
        input.push('\n');
        input.push_str(&record(1300));
        // Buffers smaller than a line, around one, and larger than all.
        for capacity in [16, 97, 100, 4096, 1 << 20] {
            let (mut out, written) = Output::capture();
            let mut reader = BufReader::with_capacity(capacity, input.as_bytes());
            let catalog = ConfiguredAirbyteCatalog {
                streams: Vec::new(),
                extra: Extra::new(),
            };
            DevNull
                .write(&json!({}), &catalog, &mut reader, &mut out)
                .unwrap();
            let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
            let (states, log) = written.split_at(written.rfind("{\"type\":\"LOG\"").unwrap());
            assert_eq!(states, want, "buffer of {capacity} bytes");
            assert!(
                log.contains("Discarded 1302 records."),
                "buffer of {capacity} bytes: {log}"
            );
        }
    }
}
