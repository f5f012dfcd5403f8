//! Stable ids: every source, destination, connection and job has a UUID
//! that does not change (across commands, updates and processes), and
//! every command that takes a name or a job's number takes it as well.

use super::{echo_lines, record, script_source, setup_connection, state, Env};
use serde_json::Value;

both_backends!(ids_are_stable_unique_and_name_what_names_do);

fn id_of(v: &Value) -> String {
    let id = v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}"));
    uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("`{id}`: {e}"));
    id.to_string()
}

fn ids_are_stable_unique_and_name_what_names_do(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    let source = id_of(&env.json(&["source", "get", "src"]));
    let destination = id_of(&env.json(&["destination", "get", "dst"]));
    let connection = id_of(&env.json(&["connection", "get", "c"]));
    // Each command is a process of its own: the same ids each time.
    assert_eq!(id_of(&env.json(&["source", "get", "src"])), source);
    assert_eq!(id_of(&env.json(&["source", "list"])[0]), source);
    assert_eq!(id_of(&env.json(&["connection", "list"])[0]), connection);
    let all = [&source, &destination, &connection];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }

    // `get` shows it to people too.
    assert!(env.ok(&["source", "get", "src"]).stdout().contains(&source));
    assert!(env
        .ok(&["connection", "get", "c"])
        .stdout()
        .contains(&connection));

    // Found by id, in any of a UUID's forms; updates keep the id.
    let got = env.json(&["source", "get", &source]);
    assert_eq!(got["name"], "src");
    let upper = source.to_uppercase();
    assert_eq!(env.json(&["source", "get", &upper])["name"], "src");
    let updated = env.json(&["source", "update", &source, "--config", r#"{"n": 2}"#]);
    assert_eq!(
        (updated["name"].as_str(), id_of(&updated)),
        (Some("src"), source.clone())
    );
    assert_eq!(
        env.json(&["source", "check", &source])["connectionStatus"]["status"],
        "SUCCEEDED"
    );
    assert_eq!(
        env.json(&["destination", "get", &destination])["name"],
        "dst"
    );
    assert_eq!(
        env.json(&["destination", "check", &destination])["connectionStatus"]["status"],
        "SUCCEEDED"
    );
    let updated = env.json(&["connection", "update", &connection, "--prefix", "p_"]);
    assert_eq!(
        (updated["name"].as_str(), id_of(&updated)),
        (Some("c"), connection.clone())
    );
    assert_eq!(
        env.json(&["connection", "get", &connection])["prefix"],
        "p_"
    );
    // A connection's source and destination may be given by id too.
    let other = env.json(&[
        "connection",
        "create",
        "c2",
        "--source",
        &source,
        "--destination",
        &destination,
    ]);
    assert_eq!(
        (other["source"].as_str(), other["destination"].as_str()),
        (Some("src"), Some("dst"))
    );
    assert_ne!(id_of(&other), connection);

    // Jobs: a number and a UUID of their own; `job` takes either.
    let job = env.json(&["connection", "sync", &connection]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["connection"], "c");
    let (number, uuid) = (
        job["id"].as_i64().unwrap(),
        job["uuid"].as_str().unwrap().to_string(),
    );
    uuid::Uuid::parse_str(&uuid).unwrap();
    let by_uuid = env.json(&["job", "get", &uuid]);
    assert_eq!(
        (by_uuid["id"].as_i64(), by_uuid["uuid"].as_str()),
        (Some(number), Some(uuid.as_str()))
    );
    assert_eq!(
        env.json(&["job", "get", &number.to_string()])["uuid"],
        uuid.as_str()
    );
    assert_eq!(env.json(&["job", "list"])[0]["uuid"], uuid.as_str());
    assert_eq!(env.json(&["job", "logs", &uuid])["job"], number);
    let second = env.json(&["connection", "sync", "c"]);
    assert_ne!(second["uuid"], uuid.as_str());
    let nothing = env.run(&["job", "get", "9b2e6f0a-1c3d-4e5f-8a7b-6c5d4e3f2a1b"]);
    nothing.expect_code(2);
    assert!(
        nothing
            .stderr()
            .contains("there is no job with id `9b2e6f0a-1c3d-4e5f-8a7b-6c5d4e3f2a1b`"),
        "{}",
        nothing.stderr()
    );
    let bad = env.run(&["job", "get", "twelve"]);
    bad.expect_code(2);
    assert!(
        bad.stderr().contains("give its number or its UUID"),
        "{}",
        bad.stderr()
    );

    // A name that reads as a UUID is refused: lookups must know which.
    let shaped = "2c1a7e9f-5b3d-4c6e-9f8a-7b6c5d4e3f21";
    let refused = env.run(&["source", "create", shaped, "--connector", "sample"]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("reads as a UUID"),
        "{}",
        refused.stderr()
    );
    let missing = env.run(&["source", "get", shaped]);
    assert!(
        missing
            .stderr()
            .contains(&format!("there is no source with id `{shaped}`")),
        "{}",
        missing.stderr()
    );

    // Deleted by id.
    env.ok(&["connection", "delete", "c2"]);
    env.ok(&["connection", "delete", &connection]);
    env.ok(&["source", "delete", &source]);
    env.ok(&["destination", "delete", &destination]);
    assert_eq!(env.json(&["source", "list"]), serde_json::json!([]));
    assert_eq!(env.json(&["connection", "list"]), serde_json::json!([]));
}
