//! The source's reads: incremental syncs that pick up only new and
//! updated rows, checkpoints between cursor values that a retry resumes
//! from, rows added later at the saved cursor value, and large tables read
//! in parallel key ranges.

use super::url_config;
use crate::common::{configured_catalog, dir_names, read_jsonl, PgDatabase, Sandbox};
use serde_json::Value;

const ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
INSERT INTO items SELECT i, 'item ' || i, '2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 50) i;";

/// An incremental, deduplicated sync from the source config to `dst`,
/// keeping its state in `state`: its summary, having read `expected`
/// records.
fn incremental_sync(
    sandbox: &Sandbox,
    source_config: &str,
    dst: &PgDatabase,
    state: &std::path::Path,
    expected: u64,
) -> Value {
    let summary = sandbox.sync(
        ("postgres", source_config),
        ("postgres", &url_config(dst)),
        &[
            "--sync-mode",
            "incremental",
            "--destination-sync-mode",
            "append-dedup",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(summary["records"], expected, "{summary}");
    summary
}

#[test]
fn postgres_incremental_picks_up_only_new_and_updated_rows() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(ITEMS);
    let sandbox = Sandbox::new();
    let state = sandbox.path("state.json");
    let source_config = serde_json::json!({"url": src.url, "checkpoint_every": 10}).to_string();
    let run = |expected: u64| incremental_sync(&sandbox, &source_config, &dst, &state, expected);
    let first = run(50);
    // Checkpoints every 10 records, and the last one.
    assert!(
        first["streams"][0]["checkpoints"].as_u64().unwrap() >= 5,
        "{first}"
    );
    run(0);
    src.sql(
        "UPDATE items SET name = 'renamed', updated_at = '2025-01-01' WHERE id IN (3, 7);
         INSERT INTO items VALUES (51, 'new', '2025-01-02'), (52, 'newer', '2025-01-02');",
    );
    run(4);
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        saved[0]["stream"]["stream_state"]["cursor"],
        "2025-01-02 00:00:00+00"
    );
    let q = "SELECT string_agg(id || ':' || name || ':' || updated_at, ',' ORDER BY id) FROM items";
    assert_eq!(dst.sql(q), src.sql(q));
    assert_eq!(dst.sql("SELECT count(*) FROM items"), "52");
}

#[test]
fn postgres_large_tables_are_read_in_parallel_key_ranges() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(
        "CREATE TABLE big (id bigint PRIMARY KEY, v text);
         INSERT INTO big SELECT i * 3 - 1000, md5(i::text) FROM generate_series(1, 5000) i;
         ANALYZE big;",
    );
    let sandbox = Sandbox::new();
    let config =
        serde_json::json!({"url": src.url, "max_parallel": 3, "chunk_rows": 1000}).to_string();
    let summary = sandbox.sync(("postgres", &config), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(summary["records"], 5000, "{summary}");
    let q = "SELECT count(*), count(DISTINCT id), sum(id), min(id), max(id), md5(string_agg(v, ',' ORDER BY id)) FROM big";
    assert_eq!(dst.sql(q), src.sql(q));
    let log = std::fs::read_to_string(summary["log_file"].as_str().expect("log_file")).unwrap();
    assert!(
        log.contains("Reading public.big in 3 key ranges at once."),
        "{log}"
    );
    // In binary, each range with its own header and end marker.
    assert!(log.contains("PostgreSQL's binary format"), "{log}");
    // A small table is read in one piece.
    let small = serde_json::json!({"url": src.url, "max_parallel": 3}).to_string();
    let summary = sandbox.sync(("postgres", &small), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(dst.sql(q), src.sql(q));
    let log = std::fs::read_to_string(summary["log_file"].as_str().expect("log_file")).unwrap();
    assert!(!log.contains("key ranges"), "{log}");
}

#[test]
fn postgres_incremental_checkpoints_between_cursor_values_and_resumes_mid_table() {
    let Some(src) = PgDatabase::create() else {
        return;
    };
    // Three runs of rows sharing a cursor value: 7, 7 and 6 rows.
    src.sql(
        "CREATE TABLE ev (id int PRIMARY KEY, grp timestamptz NOT NULL);
         INSERT INTO ev SELECT i, '2024-01-01'::timestamptz + ((i - 1) / 7) * interval '1 minute'
         FROM generate_series(1, 20) i;",
    );
    let sandbox = Sandbox::new();
    let config = serde_json::json!({"url": src.url, "checkpoint_every": 3}).to_string();
    let discover = sandbox.connector("discover", "postgres", &config);
    discover.expect_code(0);
    let stream = discover.catalog()["streams"][0].clone();
    let catalog = serde_json::json!({"streams": [{
        "stream": stream, "sync_mode": "incremental", "cursor_field": ["grp"],
        "destination_sync_mode": "append", "primary_key": [["id"]]
    }]});
    let catalog_path = sandbox.write("catalog.json", &catalog.to_string());
    let read = |state: Option<&std::path::Path>| {
        let mut args = vec![
            "-o",
            "json",
            "connector",
            "read",
            "postgres",
            "--config",
            &config,
            "--catalog",
            catalog_path.to_str().unwrap(),
        ];
        if let Some(s) = state {
            args.extend(["--state", s.to_str().unwrap()]);
        }
        let run = sandbox.run(&args);
        run.expect_code(0);
        run.messages()
    };
    let messages = read(None);
    let mut records = 0;
    let mut states = Vec::new();
    for m in &messages {
        match m["type"].as_str() {
            Some("RECORD") => records += 1,
            Some("STATE") => states.push((records, m["state"].clone())),
            _ => {}
        }
    }
    let at: Vec<(u32, &str)> = states
        .iter()
        .map(|(n, s)| (*n, s["stream"]["stream_state"]["cursor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        at,
        [
            (7, "2024-01-01 00:00:00+00"),
            (14, "2024-01-01 00:01:00+00"),
            (20, "2024-01-01 00:02:00+00")
        ]
    );
    // Each checkpoint counts the rows sent at its value, so a resume from
    // it needs not send them again.
    let counts: Vec<u64> = states
        .iter()
        .map(|(_, s)| {
            s["stream"]["stream_state"]["cursor_record_count"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(counts, [7, 7, 6]);
    // A retry from the first checkpoint reads the rest of the table.
    let state = sandbox.write("state.json", &serde_json::json!([states[0].1]).to_string());
    let ids: Vec<i64> = read(Some(&state))
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| m["record"]["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (8..=20).collect::<Vec<_>>());
}

#[test]
fn postgres_a_schema_that_does_not_exist_is_a_config_error_and_an_empty_one_is_not() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    db.sql(
        "CREATE SCHEMA empty; CREATE SCHEMA sales; \
         CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders VALUES (1), (2); \
         CREATE TABLE public.users (id int PRIMARY KEY); INSERT INTO public.users VALUES (1);",
    );
    let config =
        |schemas: &[&str]| serde_json::json!({"url": db.url, "schemas": schemas}).to_string();
    let target = format!("sluice@localhost:5432/{}", db.name);
    let out = sandbox.path("out");
    let dest = serde_json::json!({ "path": out }).to_string();
    let sync = |config: &str, extra: &[&str]| {
        let mut args = vec![
            "-o",
            "json",
            "sync",
            "--source",
            "postgres",
            "--source-config",
        ];
        args.extend([
            config,
            "--destination",
            "jsonl",
            "--destination-config",
            &dest,
        ]);
        args.extend(extra);
        sandbox.run(&args)
    };

    // check FAILED, naming the schema; a schema in another case is pointed at.
    let check = sandbox.connector("check", "postgres", &config(&["sales", "Empty"]));
    let status = check.connection_status();
    assert_eq!(status["status"], "FAILED");
    assert_eq!(
        status["message"],
        format!("the schema `Empty` does not exist in {target} (there is `empty`: schema names are case-sensitive); check `schemas`")
    );
    // discover fails as a config error: the sync exits 2.
    let run = sync(&config(&["sales", "nope"]), &[]);
    run.expect_code(2);
    let want = format!(
        "the schema `nope` does not exist in {target} (its schemas: empty, public, sales); check `schemas`"
    );
    assert!(run.stderr().contains(&want), "{}", run.stderr());
    // A schema with no tables is no streams, not an error of the source's.
    let empty = config(&["empty"]);
    let check = sandbox.connector("check", "postgres", &empty);
    assert_eq!(check.connection_status()["status"], "SUCCEEDED");
    let discover = sandbox.connector("discover", "postgres", &empty);
    discover.expect_code(0);
    assert_eq!(discover.catalog()["streams"], serde_json::json!([]));

    // A catalog stream whose schema went away: the source's check, run
    // before anything is read, names it (the read itself would fail before
    // it sent anything), so overwrite keeps what the destination has.
    let both = config(&["public", "sales"]);
    sync(&both, &[]).expect_code(0);
    let catalog = configured_catalog(&sandbox, ("postgres", &both), "overwrite");
    db.sql("INSERT INTO public.users VALUES (2); DROP SCHEMA sales CASCADE;");
    let run = sync(&both, &["--catalog", catalog.to_str().unwrap()]);
    run.expect_code(2);
    let error = &run.json()["error"];
    assert_eq!(error["class"], "user", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("the source fails its check: the schema `sales` does not exist in"),
        "{message}"
    );
    assert_eq!(
        read_jsonl(&out.join("public/users.jsonl")).len(),
        1,
        "not overwritten"
    );
    assert_eq!(
        read_jsonl(&out.join("sales/orders.jsonl")).len(),
        2,
        "not overwritten"
    );
    assert_eq!(dir_names(&out.join("public")), ["users.jsonl"]);
}

#[test]
fn postgres_incremental_sends_rows_added_later_at_the_saved_cursor_value() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(
        "CREATE TABLE ev (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO ev VALUES (1, '2024-01-01'), (2, '2024-01-02'), (3, '2024-01-02');",
    );
    let sandbox = Sandbox::new();
    let state = sandbox.path("state.json");
    let source_config = url_config(&src);
    let run = |expected: u64| {
        incremental_sync(&sandbox, &source_config, &dst, &state, expected);
    };
    let saved = || -> Value {
        let all: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        all[0]["stream"]["stream_state"].clone()
    };
    run(3);
    assert_eq!(saved()["cursor"], "2024-01-02 00:00:00+00");
    assert_eq!(saved()["cursor_record_count"], 2);
    // Nothing new at the saved value: nothing is sent again.
    run(0);
    // A row committed after the sync, with the value it ended at, arrives
    // (with the two rows it ties with, sent again).
    src.sql("INSERT INTO ev VALUES (4, '2024-01-02');");
    run(3);
    assert_eq!(saved()["cursor_record_count"], 3);
    run(0);
    let q = "SELECT string_agg(id || ':' || updated_at, ',' ORDER BY id) FROM ev";
    assert_eq!(dst.sql(q), src.sql(q));
    // A state written before the count was kept sends the ties once more.
    let mut old: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    old[0]["stream"]["stream_state"]
        .as_object_mut()
        .unwrap()
        .remove("cursor_record_count");
    std::fs::write(&state, old.to_string()).unwrap();
    run(3);
    run(0);
    assert_eq!(dst.sql("SELECT count(*) FROM ev"), "4");
}

/// Each stream its own modes, and one stream only some of its fields:
/// `items` incremental and deduplicated without its `secret` column,
/// `logs` replaced by each run.
#[test]
fn postgres_streams_take_their_own_modes_and_selected_fields() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text, secret text, updated_at timestamptz NOT NULL);
         INSERT INTO items SELECT i, 'item ' || i, 'hush', '2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 20) i;
         CREATE TABLE logs (id int PRIMARY KEY, msg text);
         INSERT INTO logs SELECT i, 'log ' || i FROM generate_series(1, 5) i;",
    );
    let sandbox = Sandbox::new();
    let state = sandbox.path("state.json");
    let source_config = serde_json::json!({"url": src.url}).to_string();
    let run = |expected: u64| {
        let summary = sandbox.sync(
            ("postgres", &source_config),
            ("postgres", &url_config(&dst)),
            &[
                "--stream-sync-mode",
                "items=incremental",
                "--stream-destination-sync-mode",
                "items=append_dedup",
                "--fields",
                "items=id,name,updated_at",
                "--state",
                state.to_str().unwrap(),
            ],
        );
        assert_eq!(summary["records"], expected, "{summary}");
        // Selected fields are the source's to leave out: still in binary.
        let log = std::fs::read_to_string(summary["log_file"].as_str().unwrap()).unwrap();
        assert!(
            log.contains("Stream public.items: rows go to the destination in PostgreSQL's binary"),
            "{log}"
        );
    };
    run(25);
    src.sql(
        "UPDATE items SET name = 'renamed', updated_at = '2025-01-01' WHERE id = 3;
         INSERT INTO logs VALUES (6, 'log 6');",
    );
    // Only the changed item, and every log again.
    run(7);
    let columns = "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'items' AND column_name NOT LIKE '\\_airbyte%'";
    assert_eq!(dst.sql(columns), "id,name,updated_at");
    assert_eq!(
        dst.sql("SELECT count(*), count(DISTINCT id) FROM items"),
        "20|20"
    );
    assert_eq!(dst.sql("SELECT name FROM items WHERE id = 3"), "renamed");
    // Overwritten, not appended: six logs, not eleven.
    assert_eq!(dst.sql("SELECT count(*) FROM logs"), "6");
}
