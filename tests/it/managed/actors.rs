//! Sources, destinations and connections: created (a config checked
//! against the spec and by the connector), listed, updated, synced,
//! deleted; and their secrets never printed, in any output or log.

use super::{echo_lines, record, script_source, setup_connection, state, Env, SECRET};
use crate::common::read_jsonl;
use serde_json::{json, Value};

both_backends!(
    sources_destinations_and_connections_round_trip,
    secrets_are_never_printed,
);

fn sources_destinations_and_connections_round_trip(env: &Env) {
    let s = &env.sandbox;
    let created = env.json(&[
        "source",
        "create",
        "gen",
        "--connector",
        "sample",
        "--config",
        r#"{"count": 7}"#,
    ]);
    assert_eq!(created["name"], "gen");
    assert_eq!(created["config"], json!({"count": 7}));
    // A config that does not match the spec is refused, naming the field.
    let bad = env.run(&[
        "source",
        "create",
        "bad",
        "--connector",
        "sample",
        "--config",
        r#"{"count": "x"}"#,
    ]);
    bad.expect_code(2);
    assert!(
        bad.stderr()
            .contains("the config of source `bad` does not match the connector's spec"),
        "{}",
        bad.stderr()
    );
    assert!(bad.stderr().contains("`/count`"), "{}", bad.stderr());
    let dup = env.run(&["source", "create", "gen", "--connector", "sample"]);
    dup.expect_code(2);
    assert!(
        dup.stderr().contains("source `gen` already exists"),
        "{}",
        dup.stderr()
    );
    // A failing check is refused unless --no-check.
    let nowhere = r#"{"path": "/proc/no-such-dir/x"}"#;
    let failed = env.run(&[
        "destination",
        "create",
        "d",
        "--connector",
        "jsonl",
        "--config",
        nowhere,
    ]);
    assert_eq!(failed.code(), 2, "{}", failed.stderr());
    assert!(
        failed.stderr().contains("destination `d` failed its check"),
        "{}",
        failed.stderr()
    );
    env.ok(&[
        "destination",
        "create",
        "d",
        "--connector",
        "jsonl",
        "--config",
        nowhere,
        "--no-check",
    ]);
    let out = format!(r#"{{"path": "{}"}}"#, s.path("out").display());
    env.ok(&["destination", "update", "d", "--config", &out]);
    let listed = env.json(&["destination", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["connector"], "jsonl");
    assert_eq!(
        env.json(&["destination", "get", "d"])["config"]["path"],
        s.path("out").display().to_string()
    );
    let checked = env.json(&["destination", "check", "d"]);
    assert_eq!(
        checked["connectionStatus"]["status"], "SUCCEEDED",
        "{checked}"
    );
    let discovered = env.json(&["source", "discover", "gen"]);
    assert_eq!(
        discovered["catalog"]["streams"][0]["name"], "users",
        "{discovered}"
    );

    // Connections: unknown names, bad schedules, then one that works.
    let nosrc = env.run(&[
        "connection",
        "create",
        "c",
        "--source",
        "nope",
        "--destination",
        "d",
    ]);
    nosrc.expect_code(2);
    assert!(
        nosrc.stderr().contains("there is no source named `nope`"),
        "{}",
        nosrc.stderr()
    );
    let badsched = env.run(&[
        "connection",
        "create",
        "c",
        "--source",
        "gen",
        "--destination",
        "d",
        "--schedule",
        "hourly",
    ]);
    badsched.expect_code(2);
    assert!(
        badsched.stderr().contains("`hourly` is not a schedule"),
        "{}",
        badsched.stderr()
    );
    let c = env.json(&[
        "connection",
        "create",
        "c",
        "--source",
        "gen",
        "--destination",
        "d",
        "--streams",
        "users",
        "--schedule",
        "cron:0 */6 * * *",
        "--namespace",
        "custom:raw",
        "--prefix",
        "p_",
    ]);
    assert_eq!(c["schedule"], "cron:0 */6 * * *");
    assert_eq!(c["catalog_streams"][0]["name"], "users");
    let listed = env.json(&["connection", "list"]);
    assert_eq!(listed[0]["last_job"], Value::Null);
    env.ok(&["connection", "disable", "c"]);
    let inactive = env.run(&["connection", "sync", "c"]);
    inactive.expect_code(2);
    env.run(&["connection", "refresh", "c"]).expect_code(2);
    assert!(
        inactive.stderr().contains("connection `c` is inactive"),
        "{}",
        inactive.stderr()
    );
    env.ok(&["connection", "enable", "c"]);
    let updated = env.json(&[
        "connection",
        "update",
        "c",
        "--namespace",
        "destination",
        "--prefix",
        "",
        "--schedule",
        "every:2h",
    ]);
    assert_eq!(updated["schedule"], "every:2h");
    assert_eq!(updated["namespace"], "destination");

    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"][0]["records"], 7);
    assert_eq!(read_jsonl(&s.path("out/users.jsonl")).len(), 7);
    let listed = env.json(&["connection", "list"]);
    assert_eq!(listed[0]["last_job"]["status"], "succeeded");
    assert_eq!(listed[0]["last_job"]["id"], job["id"]);
    let table = env.ok(&["connection", "list"]).stdout();
    assert!(table.contains("succeeded"), "{table}");
    let jobs = env.json(&["job", "list", "--connection", "c", "--status", "succeeded"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["job", "list", "--status", "failed"]), json!([]));
    let id = job["id"].to_string();
    let got = env.json(&["job", "get", &id]);
    assert_eq!(got["attempts"][0]["stats"][0]["name"], "users");
    assert_eq!(got["attempts"][0]["stats"][0]["records"], 7);
    let logs = env.ok(&["job", "logs", &id]).stdout();
    assert!(
        logs.contains(&format!("Job {id} (sync) of connection `c`, attempt 1.")),
        "{logs}"
    );
    // A full refresh commits at its end: the log's count says so, as the
    // job's does.
    assert_eq!(job["attempts"][0]["records_committed"], 7);
    assert!(
        logs.contains("The sync succeeded: 7 records, 7 committed."),
        "{logs}"
    );
    let text = env.ok(&["job", "get", &id]).stdout();
    assert!(text.contains("attempt-1.log"), "{text}");

    // Deleting: in use, then not.
    let inuse = env.run(&["source", "delete", "gen"]);
    inuse.expect_code(2);
    assert!(
        inuse
            .stderr()
            .contains("source `gen` is used by connection(s): c"),
        "{}",
        inuse.stderr()
    );
    env.ok(&["connection", "delete", "c"]);
    env.ok(&["source", "delete", "gen"]);
    env.ok(&["destination", "delete", "d"]);
    assert_eq!(env.json(&["source", "list"]), json!([]));
    let gone = env.run(&["source", "get", "gen"]);
    gone.expect_code(2);
    assert!(
        gone.stderr().contains("there is no source named `gen`"),
        "{}",
        gone.stderr()
    );
}

fn secrets_are_never_printed(env: &Env) {
    let s = &env.sandbox;
    // The source logs its config and fails with it in its message.
    let read = format!(
        "    echo \"{{\\\"type\\\":\\\"LOG\\\",\\\"log\\\":{{\\\"level\\\":\\\"INFO\\\",\\\"message\\\":\\\"token is {SECRET}\\\"}}}}\"\n{}\n    echo 'failing with {SECRET}' >&2\n    exit 1",
        echo_lines(&[record(1), state(1)])
    );
    let src = script_source(s, &read);
    setup_connection(env, &src);
    let mut outputs = Vec::new();
    for args in [
        &["source", "get", "src"][..],
        &["source", "list"],
        &["-o", "json", "source", "get", "src"],
        &["-o", "json", "source", "list"],
        &["export"],
        &["connection", "get", "c"],
    ] {
        let run = env.ok(args);
        outputs.push(run.stdout() + &run.stderr());
    }
    let job = env.run(&[
        "-o",
        "json",
        "connection",
        "sync",
        "c",
        "--retry-backoff",
        "0s",
        "--max-failed-attempts",
        "1",
        "--max-attempts",
        "1",
    ]);
    job.expect_code(1);
    outputs.push(job.stdout() + &job.stderr());
    let id = job.json()["id"].to_string();
    for args in [
        &["job", "logs", &id][..],
        &["job", "get", &id],
        &["-o", "json", "job", "get", &id],
    ] {
        let run = env.ok(args);
        outputs.push(run.stdout() + &run.stderr());
    }
    for text in &outputs {
        assert!(!text.contains(SECRET), "a secret was printed:\n{text}");
    }
    assert!(outputs[0].contains("**********"), "{}", outputs[0]);
    let logs = &outputs[outputs.len() - 3];
    assert!(logs.contains("token is **********"), "{logs}");
    // The owner of the store can see them.
    let shown = env.json(&["source", "get", "src", "--show-secrets"]);
    assert_eq!(shown["config"]["token"], SECRET);
    // Updating with the mask keeps the stored secret.
    env.ok(&[
        "source",
        "update",
        "src",
        "--config",
        r#"{"token": "**********", "n": 2}"#,
    ]);
    let shown = env.json(&["source", "get", "src", "--show-secrets"]);
    assert_eq!(shown["config"], json!({"token": SECRET, "n": 2}));
}
