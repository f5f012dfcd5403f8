//! `sample`: deterministic generated records, for demos, tests and benchmarks.
//!
//! The same `seed`, `count` and `record_bytes` always give the same records.
//! Each stream has records `id` 1..=count whose cursor `updated_at` grows
//! with the id, so incremental syncs behave like a table that only gains
//! rows: a second run with the saved state reads nothing new until `count`
//! grows.

use super::{parse_config, Builtin, BuiltinError, BuiltinResult, Kind, Output};
use crate::protocol::{
    AirbyteCatalog, AirbyteStream, ConfiguredAirbyteCatalog, ConnectorSpecification, EstimateTrace,
    Extra, Message, StateMessage, StateSnapshot, StreamDescriptor, StreamStatus, SyncMode,
    TraceKind, TraceMessage,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write as _;

pub struct Sample;

/// 2024-01-01T00:00:00Z: record `id` was last updated `id` seconds after it.
const EPOCH_2024: i64 = 1_704_067_200;
const CURSOR: &str = "updated_at";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_count")]
    count: u64,
    #[serde(default = "default_streams")]
    streams: Vec<String>,
    #[serde(default = "default_record_bytes")]
    record_bytes: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_checkpoint")]
    checkpoint_every: u64,
}

fn default_count() -> u64 {
    1000
}
fn default_streams() -> Vec<String> {
    vec!["users".into()]
}
fn default_record_bytes() -> usize {
    200
}
fn default_checkpoint() -> u64 {
    10_000
}

impl Config {
    fn parse(config: &Value) -> BuiltinResult<Config> {
        let config: Config = parse_config("sample", config)?;
        if config.streams.is_empty() {
            return Err(BuiltinError::config("`streams` names no stream"));
        }
        if config.checkpoint_every == 0 {
            return Err(BuiltinError::config(
                "`checkpoint_every` must be at least 1",
            ));
        }
        Ok(config)
    }
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
            "payload": {"type": "string"}
        }
    })
}

impl Builtin for Sample {
    fn name(&self) -> &'static str {
        "sample"
    }

    fn kind(&self) -> Kind {
        Kind::Source
    }

    fn description(&self) -> &'static str {
        "Deterministic generated records (full refresh and incremental)"
    }

    fn spec(&self) -> ConnectorSpecification {
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": "Sample Source Spec",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "count": {"type": "integer", "minimum": 0, "default": 1000,
                        "description": "Records per stream."},
                    "streams": {"type": "array", "items": {"type": "string", "minLength": 1},
                        "minItems": 1, "default": ["users"], "description": "Stream names."},
                    "record_bytes": {"type": "integer", "minimum": 0, "default": 200,
                        "description": "Approximate size of each record's data, in bytes."},
                    "seed": {"type": "integer", "minimum": 0, "default": 0,
                        "description": "Same seed, same records."},
                    "checkpoint_every": {"type": "integer", "minimum": 1, "default": 10000,
                        "description": "Records between state messages in incremental syncs."}
                }
            }),
            supports_incremental: Some(true),
            supported_destination_sync_modes: Vec::new(),
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }

    fn check(&self, config: &Value) -> BuiltinResult<()> {
        Config::parse(config).map(|_| ())
    }

    fn discover(&self, config: &Value) -> BuiltinResult<AirbyteCatalog> {
        let config = Config::parse(config)?;
        Ok(AirbyteCatalog {
            streams: config
                .streams
                .iter()
                .map(|name| {
                    let mut s = AirbyteStream::new(name, schema());
                    s.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
                    s.source_defined_cursor = Some(true);
                    s.default_cursor_field = vec![CURSOR.into()];
                    s.source_defined_primary_key = vec![vec!["id".into()]];
                    s.is_resumable = Some(true);
                    s
                })
                .collect(),
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
        let config = Config::parse(config)?;
        let state = match state {
            Some(v) => StateSnapshot::from_file_value(v.clone())
                .map_err(|e| BuiltinError::config(format!("invalid state: {e}")))?,
            None => None,
        };
        let filler = Filler::new(config.seed);
        // Each stream is checked against the config and the state before any
        // is read: one the config lost fails the read before any record.
        let mut plan = Vec::with_capacity(catalog.streams.len());
        for configured in &catalog.streams {
            let stream = &configured.stream;
            if !config.streams.contains(&stream.name) {
                return Err(BuiltinError::config(format!(
                    "sample has no stream `{}` (its streams: {}); discover the streams again \
                     or add it to `streams`",
                    stream.name,
                    config.streams.join(", ")
                )));
            }
            let incremental = configured.sync_mode == SyncMode::Incremental;
            let start = match (&state, incremental) {
                (Some(s), true) => resume_after(s, &stream.descriptor())?,
                _ => 0,
            };
            plan.push((stream, incremental, start));
        }
        for (stream, incremental, start) in plan {
            let descriptor = stream.descriptor();
            out.stream_status(&descriptor, StreamStatus::Started)?;
            out.message(&Message::Trace(TraceMessage {
                kind: TraceKind::Estimate,
                emitted_at: crate::protocol::now_millis() as f64,
                error: None,
                estimate: Some(EstimateTrace {
                    name: stream.name.clone(),
                    kind: "STREAM".into(),
                    namespace: stream.namespace.clone(),
                    row_estimate: Some(config.count.saturating_sub(start) as i64),
                    byte_estimate: None,
                    extra: Extra::new(),
                }),
                stream_status: None,
                analytics: None,
                extra: Extra::new(),
            }))?;
            out.stream_status(&descriptor, StreamStatus::Running)?;
            let mut gen = Generator::new(&descriptor, &config, &filler);
            let mut line = Vec::with_capacity(config.record_bytes + 256);
            let mut last = start;
            for id in start + 1..=config.count {
                if id % 1024 == 0 {
                    out.check_cancel()?;
                    gen.refresh_clock();
                }
                line.clear();
                gen.record(id, &mut line);
                out.raw(&line)?;
                last = id;
                if incremental && id % config.checkpoint_every == 0 && id != config.count {
                    out.state(cursor_state(&descriptor, id))?;
                }
            }
            if incremental {
                // The final state, also when nothing was new.
                out.state(cursor_state(&descriptor, last))?;
            }
            out.stream_status(&descriptor, StreamStatus::Complete)?;
        }
        out.flush()
    }
}

fn cursor_state(stream: &StreamDescriptor, id: u64) -> StateMessage {
    StateMessage::stream(
        stream.clone(),
        json!({ CURSOR: timestamp(EPOCH_2024 + id as i64) }),
    )
}

/// The last id already synced, from a stream's saved cursor.
fn resume_after(state: &StateSnapshot, stream: &StreamDescriptor) -> BuiltinResult<u64> {
    let Some(s) = state.stream_state(stream) else {
        return Ok(0);
    };
    let Some(cursor) = s.get(CURSOR) else {
        return Ok(0);
    };
    let text = cursor.as_str().ok_or_else(|| {
        BuiltinError::config(format!("the state of `{stream}` has a non-string cursor"))
    })?;
    let t = humantime::parse_rfc3339(text).map_err(|e| {
        BuiltinError::config(format!(
            "the state of `{stream}` has a bad cursor `{text}`: {e}"
        ))
    })?;
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok((secs - EPOCH_2024).max(0) as u64)
}

/// An RFC 3339 UTC timestamp, to the second.
fn timestamp(secs: i64) -> String {
    let mut b = Vec::with_capacity(20);
    write_timestamp(&mut b, secs);
    String::from_utf8(b).expect("ASCII")
}

/// Howard Hinnant's days-to-civil, then fixed-width digits: no allocation.
fn write_timestamp(out: &mut Vec<u8>, secs: i64) {
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
    let digits = |out: &mut Vec<u8>, v: i64, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + ((v / 10i64.pow(i)) % 10) as u8);
        }
    };
    digits(out, y, 4);
    out.push(b'-');
    digits(out, m, 2);
    out.push(b'-');
    digits(out, d, 2);
    out.push(b'T');
    digits(out, rem / 3600, 2);
    out.push(b':');
    digits(out, rem / 60 % 60, 2);
    out.push(b':');
    digits(out, rem % 60, 2);
    out.push(b'Z');
}

/// splitmix64: a tiny, fast, well-mixed generator for deterministic data.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A block of seeded lowercase text that payloads are cut from, so making a
/// payload is a copy, not a random draw per byte.
struct Filler(Vec<u8>);

impl Filler {
    const LEN: usize = 1 << 16;

    fn new(seed: u64) -> Self {
        let mut state = mix(seed);
        let text = (0..Self::LEN)
            .map(|_| {
                state = mix(state);
                b'a' + (state % 26) as u8
            })
            .collect();
        Filler(text)
    }

    fn slice(&self, key: u64, len: usize) -> &[u8] {
        let len = len.min(Self::LEN / 2);
        let start = (key as usize) % (Self::LEN - len);
        &self.0[start..start + len]
    }
}

const FIRST: [&str; 16] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
    "Radia", "Dennis", "Sophie", "Linus", "Hedy", "Niklaus",
];
const LAST: [&str; 16] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton",
    "Thompson", "Perlman", "Ritchie", "Wilson", "Torvalds", "Lamarr", "Wirth",
];

/// Writes one stream's records straight into protocol lines.
struct Generator<'a> {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    seed: u64,
    record_bytes: usize,
    filler: &'a Filler,
}

impl<'a> Generator<'a> {
    fn new(stream: &StreamDescriptor, config: &Config, filler: &'a Filler) -> Self {
        let mut prefix = super::record_head(stream);
        prefix.extend_from_slice(b"\"data\":{\"id\":");
        let mut g = Generator {
            prefix,
            suffix: Vec::new(),
            seed: config.seed,
            record_bytes: config.record_bytes,
            filler,
        };
        g.refresh_clock();
        g
    }

    /// `emitted_at` is taken once per batch: a clock read per record would
    /// cost more than the rest of the record.
    fn refresh_clock(&mut self) {
        self.suffix.clear();
        writeln!(
            self.suffix,
            "}},\"emitted_at\":{}}}}}",
            crate::protocol::now_millis()
        )
        .expect("writing to a Vec");
    }

    fn record(&self, id: u64, out: &mut Vec<u8>) {
        let h = mix(id ^ mix(self.seed));
        let first = FIRST[(h & 15) as usize];
        let last = LAST[((h >> 4) & 15) as usize];
        out.extend_from_slice(&self.prefix);
        let mut num = itoa_buf();
        out.extend_from_slice(fmt_u64(&mut num, id));
        out.extend_from_slice(b",\"updated_at\":\"");
        write_timestamp(out, EPOCH_2024 + id as i64);
        out.extend_from_slice(b"\",\"name\":\"");
        out.extend_from_slice(first.as_bytes());
        out.push(b' ');
        out.extend_from_slice(last.as_bytes());
        out.extend_from_slice(b"\",\"email\":\"");
        out.extend_from_slice(first.to_ascii_lowercase().as_bytes());
        out.push(b'.');
        out.extend_from_slice(fmt_u64(&mut num, id));
        out.extend_from_slice(b"@example.com\",\"score\":");
        out.extend_from_slice(fmt_u64(&mut num, (h >> 8) % 1000));
        out.push(b'.');
        out.push(b'0' + ((h >> 20) % 10) as u8);
        out.extend_from_slice(b",\"active\":");
        out.extend_from_slice(if (h >> 24) & 1 == 1 {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"payload\":\"");
        // Pad the data to about `record_bytes`: what is written so far of
        // it, plus the closing characters.
        let data_so_far = out.len() - (self.prefix.len() - b"{\"id\":".len()) + 2;
        let pad = self.record_bytes.saturating_sub(data_so_far);
        out.extend_from_slice(self.filler.slice(h >> 32, pad));
        out.push(b'"');
        out.extend_from_slice(&self.suffix);
    }
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{envelope, ConfiguredAirbyteStream, DestinationSyncMode};

    fn catalog(mode: SyncMode) -> ConfiguredAirbyteCatalog {
        let discovered = Sample
            .discover(&json!({"streams": ["users", "orders"]}))
            .unwrap();
        ConfiguredAirbyteCatalog {
            streams: discovered
                .streams
                .into_iter()
                .map(|stream| ConfiguredAirbyteStream {
                    stream,
                    sync_mode: mode,
                    cursor_field: vec![CURSOR.into()],
                    destination_sync_mode: DestinationSyncMode::Append,
                    destination_object_name: None,
                    primary_key: vec![vec!["id".into()]],
                    generation_id: None,
                    minimum_generation_id: None,
                    sync_id: None,
                    include_files: None,
                    extra: Extra::new(),
                })
                .collect(),
            extra: Extra::new(),
        }
    }

    fn read(config: Value, mode: SyncMode, state: Option<Value>) -> Vec<Message> {
        let (mut out, buf) = Output::capture();
        Sample
            .read(&config, &catalog(mode), state.as_ref(), &mut out)
            .unwrap();
        out.flush().unwrap();
        let bytes = buf.lock().unwrap().clone();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Message::parse(l).unwrap())
            .collect()
    }

    fn records(msgs: &[Message]) -> Vec<(String, Value)> {
        msgs.iter()
            .filter_map(|m| match m {
                Message::Record(r) => Some((r.stream.clone(), r.data.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn records_are_valid_deterministic_and_about_the_asked_size() {
        let config =
            json!({"count": 50, "streams": ["users", "orders"], "record_bytes": 300, "seed": 7});
        let a = read(config.clone(), SyncMode::FullRefresh, None);
        let b = read(config, SyncMode::FullRefresh, None);
        let (ra, rb) = (records(&a), records(&b));
        assert_eq!(ra.len(), 100);
        assert_eq!(ra, rb, "same seed, same records");
        for (_, data) in &ra {
            let size = serde_json::to_vec(data).unwrap().len();
            assert!((295..=305).contains(&size), "record of {size} bytes");
        }
        assert_eq!(ra[0].1["id"], 1);
        assert_eq!(ra[0].1["updated_at"], "2024-01-01T00:00:01Z");
        // Full refresh emits no state.
        assert!(!a.iter().any(|m| matches!(m, Message::State(_))));
        let other = records(&read(
            json!({"count": 50, "streams": ["users", "orders"], "record_bytes": 300, "seed": 8}),
            SyncMode::FullRefresh,
            None,
        ));
        assert_ne!(ra, other, "another seed, other records");
    }

    #[test]
    fn a_stream_the_config_or_state_cannot_serve_fails_before_any_record() {
        let bad_state = json!([{"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "orders"}, "stream_state": {"updated_at": "soon"}}}]);
        let cases = [
            (
                json!({"streams": ["users", "ordrs"]}),
                SyncMode::FullRefresh,
                None,
                "sample has no stream `orders` (its streams: users, ordrs); \
                 discover the streams again or add it to `streams`",
            ),
            (
                json!({"streams": ["users", "orders"]}),
                SyncMode::Incremental,
                Some(bad_state),
                "the state of `orders` has a bad cursor `soon`: timestamp format is invalid",
            ),
        ];
        for (config, mode, state, want) in cases {
            let (mut out, buf) = Output::capture();
            let err = Sample
                .read(&config, &catalog(mode), state.as_ref(), &mut out)
                .unwrap_err();
            out.flush().unwrap();
            assert!(buf.lock().unwrap().is_empty(), "nothing is sent first");
            assert_eq!(err.failure_type, crate::protocol::FailureType::ConfigError);
            assert_eq!(err.message, want);
        }
    }

    #[test]
    fn records_pass_the_envelope_scanner() {
        let (mut out, buf) = Output::capture();
        let g_config = Config::parse(&json!({"record_bytes": 10})).unwrap();
        let filler = Filler::new(1);
        let g = Generator::new(
            &StreamDescriptor::new(Some("n\"s"), "st"),
            &g_config,
            &filler,
        );
        let mut line = Vec::new();
        g.record(12345, &mut line);
        out.raw(&line).unwrap();
        let e = envelope::scan(line.trim_ascii_end()).unwrap();
        let r = e.record.unwrap();
        assert_eq!((r.namespace.as_deref(), &*r.stream), (Some("n\"s"), "st"));
        drop(buf);
    }

    #[test]
    fn incremental_checkpoints_and_resumes_from_state() {
        let config = json!({"count": 25, "streams": ["users", "orders"], "checkpoint_every": 10});
        let msgs = read(config.clone(), SyncMode::Incremental, None);
        let states: Vec<&StateMessage> = msgs
            .iter()
            .filter_map(|m| match m {
                Message::State(s) => Some(s),
                _ => None,
            })
            .collect();
        // 10, 20 and the final 25, per stream.
        assert_eq!(states.len(), 6);
        let mut snapshot = None;
        for s in &states {
            StateSnapshot::apply(&mut snapshot, s);
        }
        let file = snapshot.unwrap().to_file_value();
        assert_eq!(
            file[0]["stream"]["stream_state"],
            json!({"updated_at": "2024-01-01T00:00:25Z"})
        );
        // Nothing new with the same count; five new records when it grows.
        let again = read(config, SyncMode::Incremental, Some(file.clone()));
        assert_eq!(records(&again).len(), 0);
        let grown = read(
            json!({"count": 30, "streams": ["users", "orders"], "checkpoint_every": 10}),
            SyncMode::Incremental,
            Some(file),
        );
        let ids: Vec<i64> = records(&grown)
            .iter()
            .filter(|(s, _)| s == "users")
            .map(|(_, d)| d["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![26, 27, 28, 29, 30]);
    }

    #[test]
    fn timestamps_match_a_calendar() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(EPOCH_2024 + 86_399), "2024-01-01T23:59:59Z");
    }
}
