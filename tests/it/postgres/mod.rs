//! The built-in PostgreSQL source and destination against a real server,
//! one story a module: values and their types, the source's reads, the
//! destination's sync modes and tables, killed runs, odd and long names,
//! connecting (TLS, a wrong password). This module holds what several of
//! them use: a URL config, and a scripted source that prints the records a
//! test wrote to a file.

mod connect;
mod destination;
mod kill;
mod names;
mod source;
mod types;

use crate::common::{PgDatabase, Run, Sandbox};

/// `sluice -o json connector COMMAND postgres --config CONFIG EXTRA...`.
fn connector(sandbox: &Sandbox, command: &str, config: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "-o",
        "json",
        "connector",
        command,
        "postgres",
        "--config",
        config,
    ];
    args.extend(extra);
    sandbox.run(&args)
}

fn url_config(db: &PgDatabase) -> String {
    serde_json::json!({ "url": db.url }).to_string()
}

/// A source script: answers spec and discover for the stream `users`
/// (id key, `seq` cursor, `_ab_cdc_deleted_at`), and on read prints the
/// file `records` in the sandbox.
fn file_source(sandbox: &Sandbox) -> String {
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"users","json_schema":{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"seq":{"type":"integer"},"_ab_cdc_deleted_at":{"type":["null","string"],"format":"date-time"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["seq"],"source_defined_primary_key":[["id"]]}]}}"#;
    sandbox.script(
        "source",
        &format!(
            "case \"$1\" in\n  spec) echo '{{\"type\":\"SPEC\",\"spec\":{{\"connectionSpecification\":{{\"type\":\"object\"}}}}}}' ;;\n  discover) echo '{catalog}' ;;\n  read) cat \"$(dirname \"$0\")/records\"; if [ -f \"$(dirname \"$0\")/hang\" ]; then sleep 60; fi; if [ -f \"$(dirname \"$0\")/fail\" ]; then exit 3; fi ;;\nesac"
        ),
    )
}

fn user(id: u32, name: &str, seq: u32, deleted: bool) -> String {
    let deleted = if deleted {
        r#","_ab_cdc_deleted_at":"2025-01-01T00:00:00Z""#
    } else {
        ""
    };
    format!(
        r#"{{"type":"RECORD","record":{{"stream":"users","data":{{"id":{id},"name":"{name}","seq":{seq}{deleted}}},"emitted_at":1}}}}"#
    )
}

fn state_line(n: u32) -> String {
    format!(
        r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"users"}},"stream_state":{{"n":{n}}}}}}}}}"#
    )
}

fn sync_args<'a>(source: &'a str, dst: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-o",
        "json",
        "sync",
        "--source",
        source,
        "--source-config",
        "{}",
        "--destination",
        "postgres",
        "--destination-config",
        dst,
    ];
    args.extend(extra);
    args
}
