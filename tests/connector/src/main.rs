//! A protocol connector for sluice's tests and benchmarks: one static binary
//! that is a source (`spec`, `check`, `discover`, `read`) and a destination
//! (`write`), so that it runs as `exec:` and, in a `FROM scratch` image, as
//! `docker:`. Everything it does is steered by its config:
//!
//! - `streams` (names, default `["items"]`), `count` (records per stream,
//!   ids 1..=count), `record_size` (bytes of padding per record);
//! - `checkpoint_every` (a STATE every N records of a stream, and one at its
//!   end); incremental streams resume after the cursor in `--state`;
//! - `crash_after` (exit 3 after N records), `delay_ms` (a pause after each
//!   record), `pause_after` and `pause_ms` (one long pause, silent, after N
//!   records), `hog_mb` (allocate and touch that much memory first);
//! - `check_fails` (check answers FAILED);
//! - for `write`: `output_dir` (append each record's data to
//!   `<dir>/<stream>.jsonl`, else only count), every STATE echoed back
//!   once what came before it is written; `pause_after` and `pause_ms` too.
//!
//! It must never need anything but its own binary: no libc files, no shell.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::exit;
use std::time::Duration;

const BUF: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].clone())
    };
    let config = flag("--config").map(|p| read_json(&p)).unwrap_or(json!({}));
    let command = args.first().map(String::as_str).unwrap_or("");
    if matches!(command, "read" | "write") {
        hog(&config);
    }
    match command {
        "spec" => emit(&spec()),
        "check" => check(&config),
        "discover" => emit(&json!({"type": "CATALOG", "catalog": catalog(&config)})),
        "read" => {
            let catalog = flag("--catalog").map(|p| read_json(&p)).unwrap_or(Value::Null);
            let state = flag("--state").map(|p| read_json(&p)).unwrap_or(Value::Null);
            read(&config, &catalog, &state);
        }
        "write" => write(&config),
        other => {
            eprintln!("test connector: unknown command `{other}`; use spec, check, discover, read or write");
            exit(2);
        }
    }
}

fn read_json(path: &str) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("test connector: cannot read {path}: {e}");
        exit(4);
    });
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        eprintln!("test connector: {path} is not JSON: {e}");
        exit(4);
    })
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn log(message: &str) {
    emit(&json!({"type": "LOG", "log": {"level": "INFO", "message": message}}));
}

fn num(config: &Value, key: &str) -> Option<u64> {
    config.get(key).and_then(Value::as_u64)
}

fn spec() -> Value {
    json!({"type": "SPEC", "spec": {
        "documentationUrl": "https://example.invalid/test-connector",
        "connectionSpecification": {
            "type": "object",
            "properties": {
                "streams": {"type": "array", "items": {"type": "string"}},
                "count": {"type": "integer", "minimum": 0},
                "record_size": {"type": "integer", "minimum": 0},
                "checkpoint_every": {"type": "integer", "minimum": 0},
                "crash_after": {"type": "integer", "minimum": 0},
                "delay_ms": {"type": "integer", "minimum": 0},
                "pause_after": {"type": "integer", "minimum": 0},
                "pause_ms": {"type": "integer", "minimum": 0},
                "hog_mb": {"type": "integer", "minimum": 0},
                "check_fails": {"type": "boolean"},
                "output_dir": {"type": "string"},
                "token": {"type": "string", "airbyte_secret": true}
            }
        },
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["overwrite", "append"]
    }})
}

/// The effective user id, as the kernel sees it (there is no libc call to
/// make in a scratch image without pulling in more than serde_json).
fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

fn check(config: &Value) {
    let fails = config.get("check_fails").and_then(Value::as_bool) == Some(true);
    let message = format!("uid={}", uid());
    emit(&json!({"type": "CONNECTION_STATUS", "connectionStatus": {
        "status": if fails { "FAILED" } else { "SUCCEEDED" },
        "message": if fails { format!("asked to fail ({message})") } else { message }
    }}));
}

fn stream_names(config: &Value) -> Vec<String> {
    config
        .get("streams")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_else(|| vec!["items".to_string()])
}

fn catalog(config: &Value) -> Value {
    let streams: Vec<Value> = stream_names(config)
        .into_iter()
        .map(|name| {
            json!({
                "name": name,
                "json_schema": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "pad": {"type": "string"}
                }},
                "supported_sync_modes": ["full_refresh", "incremental"],
                "source_defined_cursor": true,
                "default_cursor_field": ["id"],
                "source_defined_primary_key": [["id"]]
            })
        })
        .collect();
    json!({"streams": streams})
}

/// The cursor of `stream` in a `--state` array, if any.
fn cursor(state: &Value, stream: &str) -> u64 {
    state
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["stream"]["stream_descriptor"]["name"] == stream)
        .and_then(|s| s["stream"]["stream_state"]["cursor"].as_u64())
        .unwrap_or(0)
}

fn state_line(stream: &str, cursor: u64) -> String {
    json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": stream},
        "stream_state": {"cursor": cursor}
    }}})
    .to_string()
}

fn read(config: &Value, catalog: &Value, state: &Value) {
    let count = num(config, "count").unwrap_or(10);
    let every = num(config, "checkpoint_every").unwrap_or(0);
    let crash_after = num(config, "crash_after");
    let delay = Duration::from_millis(num(config, "delay_ms").unwrap_or(0));
    let pause_after = num(config, "pause_after");
    let pause = Duration::from_millis(num(config, "pause_ms").unwrap_or(0));
    let pad = "x".repeat(num(config, "record_size").unwrap_or(0) as usize);
    let configured: Vec<(String, bool)> = match catalog["streams"].as_array() {
        Some(streams) => streams
            .iter()
            .map(|s| {
                (
                    s["stream"]["name"].as_str().unwrap_or("items").to_string(),
                    s["sync_mode"] == "incremental",
                )
            })
            .collect(),
        None => stream_names(config).into_iter().map(|n| (n, false)).collect(),
    };
    let mut out = BufWriter::with_capacity(BUF, std::io::stdout().lock());
    let mut emitted = 0u64;
    let mut line = Vec::with_capacity(pad.len() + 128);
    for (stream, incremental) in configured {
        let from = if incremental { cursor(state, &stream) } else { 0 };
        let prefix = format!("{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"emitted_at\":1700000000000,\"data\":{{\"id\":");
        let suffix = format!(",\"pad\":\"{pad}\"}}}}}}\n");
        for id in from + 1..=count {
            if crash_after == Some(emitted) {
                let _ = out.flush();
                eprintln!("test connector: crashing as asked after {emitted} records");
                exit(3);
            }
            line.clear();
            line.extend_from_slice(prefix.as_bytes());
            line.extend_from_slice(id.to_string().as_bytes());
            line.extend_from_slice(suffix.as_bytes());
            if out.write_all(&line).is_err() {
                exit(0);
            }
            emitted += 1;
            if every > 0 && id % every == 0 && id != count {
                let _ = writeln!(out, "{}", state_line(&stream, id));
            }
            if !delay.is_zero() {
                let _ = out.flush();
                std::thread::sleep(delay);
            }
            if pause_after == Some(emitted) {
                let _ = out.flush();
                std::thread::sleep(pause);
            }
        }
        let _ = writeln!(out, "{}", state_line(&stream, count.max(from)));
    }
    let _ = out.flush();
}

fn write(config: &Value) {
    let dir = config.get("output_dir").and_then(Value::as_str).map(str::to_string);
    if let Some(d) = &dir {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("test connector: cannot create {d}: {e}");
            exit(4);
        }
    }
    let mut files: HashMap<String, BufWriter<std::fs::File>> = HashMap::new();
    let mut input = BufReader::with_capacity(BUF, std::io::stdin().lock());
    let mut out = std::io::stdout().lock();
    let mut line = Vec::with_capacity(BUF);
    let mut records = 0u64;
    let pause_after = num(config, "pause_after");
    let pause = Duration::from_millis(num(config, "pause_ms").unwrap_or(0));
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("test connector: reading stdin: {e}");
                exit(4);
            }
        }
        if pause_after == Some(records) {
            std::thread::sleep(pause);
        }
        // Records are the bulk: count them without parsing when only counting.
        if dir.is_none() && line.starts_with(b"{\"type\":\"RECORD\"") {
            records += 1;
            continue;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        match msg["type"].as_str() {
            Some("RECORD") => {
                records += 1;
                if let Some(d) = &dir {
                    let stream = msg["record"]["stream"].as_str().unwrap_or("unknown").to_string();
                    let f = files.entry(stream.clone()).or_insert_with(|| {
                        let path = format!("{d}/{stream}.jsonl");
                        let f = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .unwrap_or_else(|e| {
                                eprintln!("test connector: cannot open {path}: {e}");
                                exit(4);
                            });
                        BufWriter::with_capacity(BUF, f)
                    });
                    let _ = writeln!(f, "{}", msg["record"]["data"]);
                }
            }
            Some("STATE") => {
                // What came before the state is stored before it is confirmed.
                for f in files.values_mut() {
                    if let Err(e) = f.flush().and_then(|_| f.get_ref().sync_data()) {
                        eprintln!("test connector: cannot write: {e}");
                        exit(4);
                    }
                }
                let _ = out.write_all(&line);
                let _ = out.flush();
            }
            _ => {}
        }
    }
    for f in files.values_mut() {
        let _ = f.flush();
    }
    drop(out);
    log(&format!("wrote {records} records"));
}

/// Allocates and touches `hog_mb` MiB, one at a time, to meet a memory limit.
fn hog(config: &Value) {
    let Some(mb) = num(config, "hog_mb") else {
        return;
    };
    eprintln!("test connector: allocating {mb} MiB as asked");
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for i in 0..mb {
        kept.push(vec![(i % 251) as u8 + 1; 1 << 20]);
    }
    eprintln!("test connector: holding {} MiB", kept.len());
    std::mem::forget(kept);
}
