//! A connection's state: the next sync resumes from what the last one
//! stored, `state set` checks what it is given, a reset clears the state
//! and the data, and a refresh starts a new generation from the start.

use super::{echo_lines, record, script_source, setup_connection, state, Env};
use crate::common::{read_jsonl, require};
use serde_json::Value;
use std::process::Command;

both_backends!(
    connection_sync_twice_with_faker_resumes_from_stored_state,
    reset_clears_state_and_data,
    refresh_starts_a_new_generation,
    state_set_is_validated,
);

const FAKER: &str = "python:airbyte-source-faker==7.2.1";

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn connection_sync_twice_with_faker_resumes_from_stored_state(env: &Env) {
    if !require(python_available(), "python3 with venv") {
        return;
    }
    let s = &env.sandbox;
    env.ok(&[
        "source",
        "create",
        "faker",
        "--connector",
        FAKER,
        "--config",
        r#"{"count": 100, "seed": 42, "always_updated": false}"#,
    ]);
    let out = format!(r#"{{"path": "{}"}}"#, s.path("out").display());
    env.ok(&[
        "destination",
        "create",
        "local",
        "--connector",
        "jsonl",
        "--config",
        &out,
    ]);
    env.ok(&[
        "connection",
        "create",
        "f",
        "--source",
        "faker",
        "--destination",
        "local",
        "--sync-mode",
        "incremental",
        "--streams",
        "users,products",
    ]);

    let first = env.json(&["connection", "sync", "f"]);
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["attempts"][0]["records"], 200, "{first}");
    assert_eq!(first["attempts"][0]["records_committed"], 200, "{first}");
    let state = env.json(&["state", "get", "f"]);
    assert_eq!(state["state_type"], "STREAM");
    let mut streams: Vec<&str> = state["state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["stream"]["stream_descriptor"]["name"].as_str().unwrap())
        .collect();
    streams.sort();
    assert_eq!(streams, ["products", "users"]);

    // The second job starts from the stored state: nothing new.
    let second = env.json(&["connection", "sync", "f"]);
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["attempts"][0]["records"], 0, "{second}");
    assert_eq!(read_jsonl(&s.path("out/users.jsonl")).len(), 100);
    assert_eq!(read_jsonl(&s.path("out/products.jsonl")).len(), 100);
    let jobs = env.json(&["job", "list", "--connection", "f"]);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["id"], second["id"], "newest first");
}

fn reset_clears_state_and_data(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1), record(2), state(2)]));
    setup_connection(env, &src);
    env.ok(&["connection", "sync", "c"]);
    assert_eq!(read_jsonl(&s.path("out/s.jsonl")).len(), 2);
    assert_eq!(env.json(&["state", "get", "c"])["state_type"], "STREAM");
    let reset = env.json(&["connection", "reset", "c"]);
    assert_eq!(reset["kind"], "reset");
    assert_eq!(reset["status"], "succeeded", "{reset}");
    assert_eq!(env.json(&["state", "get", "c"]), Value::Null);
    assert_eq!(
        read_jsonl(&s.path("out/s.jsonl")).len(),
        0,
        "the destination was cleared"
    );
    // The next sync reads everything again.
    env.ok(&["connection", "sync", "c"]);
    assert!(s.path("seen-state-1.json").exists());
    let seen: Value =
        serde_json::from_slice(&std::fs::read(s.path("seen-state-1.json")).unwrap()).unwrap();
    assert_eq!(seen, Value::Null, "no state after a reset");
    let unknown = env.run(&["connection", "reset", "c", "--stream", "nope"]);
    unknown.expect_code(2);
    assert!(
        unknown
            .stderr()
            .contains("the connection has no stream `nope`"),
        "{}",
        unknown.stderr()
    );
}

fn refresh_starts_a_new_generation(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    env.ok(&["connection", "sync", "c"]);
    let gen = |env: &Env| {
        let c = env.json(&["connection", "get", "c"]);
        let s = &c["catalog"]["streams"][0];
        (
            s["generation_id"].as_i64().unwrap(),
            s["minimum_generation_id"].as_i64().unwrap(),
        )
    };
    // Incremental append: the same generation, nothing dropped.
    assert_eq!(gen(env), (0, 0));
    let job = env.json(&["connection", "refresh", "c"]);
    assert_eq!(job["kind"], "refresh");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(gen(env), (1, 1));
    let seen: Value =
        serde_json::from_slice(&std::fs::read(s.path("seen-state-1.json")).unwrap()).unwrap();
    assert_eq!(seen, Value::Null, "a refresh reads from the start");
    // The append stream's older generation was replaced, not appended to.
    assert_eq!(read_jsonl(&s.path("out/s.jsonl")).len(), 1);
    // A plain sync after it appends to the new generation.
    env.ok(&["connection", "sync", "c"]);
    assert_eq!(gen(env), (1, 0));
    assert_eq!(read_jsonl(&s.path("out/s.jsonl")).len(), 2);
}

fn state_set_is_validated(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    let good = s.write("good.json", r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":41}}}]"#);
    env.ok(&["state", "set", "c", "--file", good.to_str().unwrap()]);
    assert_eq!(
        env.json(&["state", "get", "c"])["state"][0]["stream"]["stream_state"]["c"],
        41
    );
    let plain = env.ok(&["state", "get", "c"]).stdout();
    let plain: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(
        plain[0]["type"], "STREAM",
        "state get prints the --state form"
    );
    env.ok(&["connection", "sync", "c"]);
    let seen: Value =
        serde_json::from_slice(&std::fs::read(s.path("seen-state-0.json")).unwrap()).unwrap();
    assert_eq!(
        seen[0]["stream"]["stream_state"]["c"], 41,
        "the sync started from the set state"
    );

    let other = s.write(
        "other.json",
        r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"zzz"},"stream_state":{}}}]"#,
    );
    let run = env.run(&["state", "set", "c", "--file", other.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("the state names stream `zzz`"),
        "{}",
        run.stderr()
    );
    let broken = s.write("broken.json", r#"[{"type":"STREAM"}]"#);
    let run = env.run(&["state", "set", "c", "--file", broken.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr().contains("is not valid"), "{}", run.stderr());
    env.ok(&["state", "reset", "c", "--stream", "s"]);
    assert_eq!(env.json(&["state", "get", "c"]), Value::Null);
}
