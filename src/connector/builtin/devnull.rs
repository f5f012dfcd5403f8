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
        let mut records: u64 = 0;
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            // Only a line that mentions STATE (or escapes it) can be one;
            // records are counted without being scanned.
            let maybe_state = memchr::memmem::find(&line, b"STATE").is_some()
                || memchr::memchr(b'\\', &line).is_some();
            if !maybe_state {
                records += 1;
                continue;
            }
            match envelope::scan(line.trim_ascii_end()) {
                Ok(e) if e.kind == MessageKind::State => {
                    out.raw(&line)?;
                    out.flush()?;
                }
                Ok(e) if e.kind == MessageKind::Record => records += 1,
                _ => {}
            }
        }
        out.log(LogLevel::Info, format!("Discarded {records} records."))?;
        out.flush()
    }
}
