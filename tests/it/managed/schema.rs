//! Schema changes a source's discover shows between syncs: followed or
//! failing the job by default, and the `propagate-fully`, `disable` and
//! `ignore` policies.

use super::{echo_lines, record, script_source, setup_actors, setup_connection, state, Env};
use crate::common::read_jsonl;
use serde_json::json;

both_backends!(
    schema_changes_are_followed_or_fail_the_job,
    schema_change_policies_propagate_fully_and_disable,
    streams_keep_their_own_modes_and_fields,
);

fn schema_changes_are_followed_or_fail_the_job(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    // A new column: propagated (the default policy), and shown.
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"},"y":{"type":"string"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]},{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
    );
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["changes"],
        json!([
            {"stream": "s", "change": "column `y` added", "breaking": false},
            {"stream": "t", "change": "new stream", "breaking": false}
        ])
    );
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(
        c["catalog"]["streams"][0]["stream"]["json_schema"]["properties"]["y"]["type"],
        "string"
    );
    assert_eq!(
        c["catalog_streams"].as_array().unwrap().len(),
        1,
        "new streams wait for propagate_fully"
    );
    let text = env.ok(&["job", "get", &job["id"].to_string()]).stdout();
    assert!(text.contains("column `y` added"), "{text}");

    // The selected stream gone: the job fails, naming it.
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
    );
    let run = env.run(&["-o", "json", "connection", "sync", "c"]);
    // The connection's setup to fix before anything moved: exit 2.
    run.expect_code(2);
    let job = run.json();
    assert_eq!(job["status"], "failed");
    let why = job["attempts"][0]["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("stream `s`: the stream is gone"), "{why}");
    assert_eq!(
        job["attempts"][0]["failure"]["failure_type"],
        "config_error"
    );
    assert_eq!(job["changes"][0]["breaking"], true);
}

const GROWN: &str = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]},{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true}]}}"#;

fn schema_change_policies_propagate_fully_and_disable(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    env.ok(&[
        "connection",
        "update",
        "c",
        "--streams",
        "s",
        "--schema-change",
        "propagate-fully",
    ]);
    s.write("catalog.json", GROWN);
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["changes"],
        json!([{"stream": "t", "change": "new stream", "breaking": false}])
    );
    let c = env.json(&["connection", "get", "c"]);
    let names: Vec<&str> = c["catalog_streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s", "t"], "the new stream was added");
    assert_eq!(c["streams"], json!(["s", "t"]));
    assert_eq!(c["catalog_streams"][1]["sync_mode"], "incremental");

    // A new stream that cannot be synced incrementally is left out, said so.
    s.write(
        "catalog.json",
        &GROWN.replace(
            r#"]}}"#,
            r#",{"name":"u","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
        ),
    );
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    let note = job["changes"][0]["change"].as_str().unwrap();
    assert!(
        note.starts_with("new stream, not added: stream `u` does not support incremental"),
        "{note}"
    );
    assert_eq!(
        env.json(&["connection", "get", "c"])["catalog_streams"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // `disable`: any change turns the connection off and fails the job.
    env.ok(&["connection", "update", "c", "--schema-change", "disable"]);
    s.write(
        "catalog.json",
        &GROWN.replace(
            r#""at":{"type":"integer"}}"#,
            r#""at":{"type":"integer"},"z":{}}"#,
        ),
    );
    let run = env.run(&["-o", "json", "connection", "sync", "c"]);
    // Nothing moved, and the connection's setup is the user's to look at.
    run.expect_code(2);
    let job = run.json();
    let why = job["attempts"][0]["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("disables itself on changes"), "{why}");
    assert_eq!(job["changes"][0]["change"], "column `z` added");
    assert_eq!(env.json(&["connection", "get", "c"])["status"], "inactive");

    // `ignore`: the catalog stays as it was.
    env.ok(&["connection", "enable", "c"]);
    env.ok(&["connection", "update", "c", "--schema-change", "ignore"]);
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(
        c["catalog"]["streams"][0]["stream"]["json_schema"]["properties"].get("z"),
        None
    );
}

/// Modes chosen per stream and a stream's fields: stored, shown, kept by
/// an update that changes another kind of choice; the fields left out
/// reach neither the destination nor the schema-change report.
fn streams_keep_their_own_modes_and_fields(env: &Env) {
    let s = &env.sandbox;
    let wide = r#"{"type":"RECORD","record":{"stream":"s","data":{"x":1,"at":1,"y":"left out"},"emitted_at":1}}"#;
    let t = r#"{"type":"RECORD","record":{"stream":"t","data":{"k":1},"emitted_at":1}}"#;
    let src = script_source(s, &echo_lines(&[wide.into(), t.into(), state(1)]));
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"},"y":{"type":"string"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]},{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
    );
    setup_actors(env, &src, "{}");
    let create = |fields: &str| {
        env.run(&[
            "connection",
            "create",
            "c",
            "--source",
            "src",
            "--destination",
            "dst",
            "--sync-mode",
            "incremental",
            "--stream-sync-mode",
            "t=full_refresh",
            "--stream-destination-sync-mode",
            "t=append",
            "--fields",
            fields,
        ])
    };
    // The cursor must stay among the fields.
    let refused = create("s=x");
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("field `at` must be selected"),
        "{}",
        refused.stderr()
    );
    create("s=x,at").expect_code(0);
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(c["sync_modes"], json!({"t": "full_refresh"}));
    assert_eq!(c["destination_sync_modes"], json!({"t": "append"}));
    assert_eq!(c["selected_fields"], json!({"s": ["x", "at"]}));
    let modes: Vec<(&str, &str, &str)> = c["catalog_streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["sync_mode"].as_str().unwrap(),
                s["destination_sync_mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("s", "incremental", "append"),
            ("t", "full_refresh", "append")
        ]
    );
    assert_eq!(
        c["catalog"]["streams"][0]["stream"]["json_schema"]["properties"],
        json!({"x": {"type": "integer"}, "at": {"type": "integer"}})
    );

    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["changes"], json!([]), "a column left out is no change");
    let rows = read_jsonl(&s.path("out/s.jsonl"));
    assert_eq!(rows.len(), 1);
    assert_eq!((&rows[0]["x"], &rows[0]["at"]), (&json!(1), &json!(1)));
    assert!(rows[0].get("y").is_none(), "{}", rows[0]);
    assert_eq!(read_jsonl(&s.path("out/t.jsonl")).len(), 1);

    // An update changes the streams it names, and only those: the other
    // streams' choices and the other kinds stay; `STREAM=` clears one.
    let update = |args: &[&str]| {
        let mut all = vec!["connection", "update", "c"];
        all.extend(args);
        env.run(&all)
    };
    update(&["--stream-destination-sync-mode", "t=overwrite"]).expect_code(0);
    update(&["--stream-sync-mode", "s=incremental"]).expect_code(0);
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(c["destination_sync_modes"], json!({"t": "overwrite"}));
    assert_eq!(
        c["sync_modes"],
        json!({"s": "incremental", "t": "full_refresh"})
    );
    assert_eq!(c["selected_fields"], json!({"s": ["x", "at"]}));
    update(&["--stream-destination-sync-mode", "t="]).expect_code(0);
    let c = env.json(&["connection", "get", "c"]);
    assert!(c["destination_sync_modes"].is_null(), "none left: {c}");
    assert_eq!(
        c["catalog_streams"][1]["destination_sync_mode"],
        "overwrite"
    );
    // A choice for a stream that is not synced is refused; one left by
    // streams no longer synced goes with them.
    let run = update(&["--streams", "s", "--stream-sync-mode", "t=full_refresh"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("is not among the streams to sync"),
        "{}",
        run.stderr()
    );
    update(&["--streams", "s"]).expect_code(0);
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(c["sync_modes"], json!({"s": "incremental"}));
    // The source drops a selected column: it leaves the selection too.
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"at":{"type":"integer"},"y":{"type":"string"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]}]}}"#,
    );
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["changes"][0]["change"], "column `x` removed", "{job}");
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(c["selected_fields"], json!({"s": ["at"]}));
    let setup = env.ok(&["export"]).stdout();
    assert!(setup.contains("selected_fields:"), "{setup}");
}
