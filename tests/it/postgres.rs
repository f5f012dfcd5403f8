//! The built-in PostgreSQL source and destination against a real server:
//! types round-trip, incremental reads, append_dedup, killed runs, odd
//! names and secrets.

use crate::common::{configured_catalog, dir_names, read_jsonl, PgDatabase, Sandbox};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn url_config(db: &PgDatabase) -> String {
    serde_json::json!({ "url": db.url }).to_string()
}

const TYPES_TABLE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy', 'it''s "ok"');
CREATE TABLE all_types (
    id bigint PRIMARY KEY,
    c_int2 smallint, c_int4 integer, c_int8 bigint,
    c_numeric numeric, c_float8 double precision, c_real real,
    c_text text, c_varchar varchar(20), c_char char(4),
    c_bool boolean, c_date date, c_time time, c_timetz timetz,
    c_ts timestamp, c_tstz timestamptz,
    c_json json, c_jsonb jsonb, c_uuid uuid,
    c_int_arr integer[], c_text_arr text[],
    c_bytea bytea, c_enum mood, c_interval interval, c_inet inet
);
INSERT INTO all_types VALUES
 (1, 32767, -2147483648, 9223372036854775807,
  12345678901234567890.123456789, 1.5, 0.25,
  E'tab\there, newline\nthere, back\\slash, "quotes", ünïcödé 🚀', 'short', 'ab',
  true, '2024-02-29', '23:59:59.999999', '12:00:00+05:30',
  '2024-01-02 03:04:05.678901', '2024-01-02 03:04:05.678901+02',
  '{"a": [1, 2, {"b": null}],
    "s": "x\ny"}', '{"k": "v", "n": 1.5}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{1,2,NULL,4}', '{"x","y z","q\"uote"}',
  '\x00ff10', 'it''s "ok"', '1 year 2 mons 3 days 04:05:06.5', '192.168.0.1/24'),
 (2, -1, 0, -9223372036854775808,
  -0.000001, -1e-300, 3.5e30,
  '', 'x', 'abcd',
  false, '0001-01-01', '00:00:00', '00:00:00-11',
  '1999-12-31 23:59:59', '1970-01-01 00:00:00+00',
  '[]', '"just a string"', '00000000-0000-0000-0000-000000000000',
  '{}', '{}',
  '', 'sad', '-5 days', '::1'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// Each column as the same text on both sides: the source's value, and
/// the destination's cast back to the source's type.
const COMPARE: &[(&str, &str)] = &[
    ("c_int2::text", "c_int2::smallint::text"),
    ("c_int4::text", "c_int4::integer::text"),
    ("c_int8::text", "c_int8::text"),
    ("c_numeric::text", "c_numeric::text"),
    ("c_float8::text", "c_float8::float8::text"),
    ("c_real::text", "c_real::real::text"),
    ("c_text", "c_text"),
    ("c_varchar::text", "c_varchar::text"),
    ("c_char::text", "c_char::char(4)::text"),
    ("c_bool::text", "c_bool::text"),
    ("c_date::text", "c_date::text"),
    ("c_time::text", "c_time::text"),
    ("c_timetz::text", "c_timetz::text"),
    ("c_ts::text", "c_ts::text"),
    ("c_tstz::text", "c_tstz::text"),
    ("c_json::jsonb::text", "c_json::text"),
    ("c_jsonb::text", "c_jsonb::text"),
    ("c_uuid::text", "c_uuid::uuid::text"),
    ("to_jsonb(c_int_arr)::text", "c_int_arr::text"),
    ("to_jsonb(c_text_arr)::text", "c_text_arr::text"),
    ("c_bytea::text", "decode(c_bytea, 'base64')::text"),
    ("c_enum::text", "c_enum"),
    ("c_interval::text", "c_interval::interval::text"),
    ("c_inet::text", "c_inet::inet::text"),
];

/// The rows of `exprs` over a table, one line per row and `|` between
/// columns, with NULL spelled out.
fn dump(db: &PgDatabase, table: &str, exprs: &[&str]) -> String {
    let cols: Vec<String> = exprs
        .iter()
        .map(|e| format!("coalesce(({e})::text, '<NULL>')"))
        .collect();
    db.sql(&format!(
        "SELECT id::text || '|' || {} FROM {table} ORDER BY id",
        cols.join(" || '|' || ")
    ))
}

#[test]
fn postgres_every_type_round_trips_and_discover_types_it() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(TYPES_TABLE);
    let sandbox = Sandbox::new();

    let discover = sandbox.connector("discover", "postgres", &url_config(&src));
    discover.expect_code(0);
    let catalog = discover.catalog();
    let stream = &catalog["streams"][0];
    assert_eq!(stream["name"], "all_types");
    assert_eq!(stream["namespace"], "public");
    assert_eq!(
        stream["source_defined_primary_key"],
        serde_json::json!([["id"]])
    );
    let props = &stream["json_schema"]["properties"];
    assert_eq!(
        props["c_int4"]["type"],
        serde_json::json!(["null", "integer"])
    );
    assert_eq!(
        props["c_numeric"]["type"],
        serde_json::json!(["null", "number"])
    );
    assert_eq!(props["c_tstz"]["airbyte_type"], "timestamp_with_timezone");
    assert_eq!(props["c_ts"]["airbyte_type"], "timestamp_without_timezone");
    assert_eq!(props["c_timetz"]["airbyte_type"], "time_with_timezone");
    assert_eq!(props["c_date"]["format"], "date");
    assert_eq!(props["c_bytea"]["airbyte_type"], "binary_data");
    assert_eq!(
        props["c_int_arr"]["type"],
        serde_json::json!(["null", "array"])
    );
    assert_eq!(
        props["c_uuid"]["type"],
        serde_json::json!(["null", "string"])
    );

    let list = sandbox.run(&["-o", "json", "connector", "list"]);
    list.expect_code(0);
    let listed = list.json();
    let pg = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["reference"] == "postgres")
        .expect("postgres is listed");
    assert_eq!(pg["kind"], "source, destination");

    let summary = sandbox.sync(
        ("postgres", &url_config(&src)),
        ("builtin:postgres", &url_config(&dst)),
        &[],
    );
    assert_eq!(summary["records"], 3, "{summary}");

    let src_exprs: Vec<&str> = COMPARE.iter().map(|(s, _)| *s).collect();
    let dst_exprs: Vec<&str> = COMPARE.iter().map(|(_, d)| *d).collect();
    let expected = dump(&src, "all_types", &src_exprs);
    let got = dump(&dst, "public.all_types", &dst_exprs);
    assert_eq!(got, expected);
    assert!(expected.contains("ünïcödé 🚀"), "{expected}");
    assert_eq!(dst.sql("SELECT count(*) FROM all_types"), "3");

    // Typed columns, Airbyte's columns, and nothing nulled on the way.
    let types = dst.sql(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name) \
         FROM information_schema.columns WHERE table_name = 'all_types' \
         AND column_name IN ('_airbyte_raw_id', '_airbyte_extracted_at', '_airbyte_meta', \
         '_airbyte_generation_id', 'c_int4', 'c_tstz', 'c_jsonb', 'c_bool', 'c_date')",
    );
    assert_eq!(
        types,
        "_airbyte_extracted_at timestamp with time zone, _airbyte_generation_id bigint, \
         _airbyte_meta jsonb, _airbyte_raw_id uuid, c_bool boolean, c_date date, \
         c_int4 bigint, c_jsonb jsonb, c_tstz timestamp with time zone"
    );
    assert_eq!(
        dst.sql(
            "SELECT count(DISTINCT _airbyte_raw_id) FROM all_types \
             WHERE _airbyte_meta->'changes' = '[]' AND _airbyte_meta ? 'sync_id' \
             AND _airbyte_extracted_at > now() - interval '1 hour'"
        ),
        "3"
    );
}

#[test]
fn postgres_values_that_do_not_fit_are_nulled_and_recorded() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"odd","json_schema":{"type":"object","properties":{"id":{"type":"integer"},"n":{"type":"integer"},"d":{"type":"string","format":"date"},"b":{"type":"boolean"},"t":{"type":"string"}}},"supported_sync_modes":["full_refresh"]}]}}"#;
    let records = [
        r#"{"id":1,"n":5,"d":"2024-01-31","b":true,"t":"fine"}"#,
        r#"{"id":2,"n":"five","d":"2024-02-30","b":"yes","t":{"nested":[1]}}"#,
        r#"{"id":3,"n":1.5,"d":null,"extra":"dropped"}"#,
    ];
    let lines: Vec<String> = records
        .iter()
        .map(|d| {
            format!(
                "echo '{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"odd\",\"data\":{d},\"emitted_at\":1}}}}'"
            )
        })
        .collect();
    let source = sandbox.script(
        "source",
        &format!(
            "case \"$1\" in\n  spec) echo '{{\"type\":\"SPEC\",\"spec\":{{\"connectionSpecification\":{{\"type\":\"object\"}}}}}}' ;;\n  discover) echo '{catalog}' ;;\n  read)\n{}\n  ;;\nesac",
            lines.join("\n")
        ),
    );
    sandbox.sync((&source, "{}"), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(
        dst.sql(
            "SELECT id || '|' || coalesce(n::text, '-') || '|' || coalesce(d::text, '-') || '|' \
             || coalesce(b::text, '-') || '|' || coalesce(t, '-') || '|' \
             || (SELECT coalesce(string_agg(c->>'field' || ':' || (c->>'change') || ':' || (c->>'reason'), ',' ORDER BY c->>'field'), '') \
                 FROM jsonb_array_elements(_airbyte_meta->'changes') c) \
             FROM odd ORDER BY id"
        ),
        "1|5|2024-01-31|true|fine|\n\
         2|-|-|-|{\"nested\":[1]}|b:NULLED:DESTINATION_TYPECAST_ERROR,d:NULLED:DESTINATION_TYPECAST_ERROR,n:NULLED:DESTINATION_TYPECAST_ERROR\n\
         3|-|-|-|-|n:NULLED:DESTINATION_TYPECAST_ERROR"
    );
    // _airbyte_extracted_at is the record's emitted_at (1 ms after the epoch).
    assert_eq!(
        dst.sql("SELECT DISTINCT _airbyte_extracted_at AT TIME ZONE 'UTC' FROM odd"),
        "1970-01-01 00:00:00.001"
    );
}

const ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
INSERT INTO items SELECT i, 'item ' || i, '2024-01-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 50) i;";

#[test]
fn postgres_incremental_picks_up_only_new_and_updated_rows() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(ITEMS);
    let sandbox = Sandbox::new();
    let state = sandbox.path("state.json");
    let source_config = serde_json::json!({"url": src.url, "checkpoint_every": 10}).to_string();
    let run = |expected: u64| {
        let summary = sandbox.sync(
            ("postgres", &source_config),
            ("postgres", &url_config(&dst)),
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
    };
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

#[test]
fn postgres_append_dedup_after_updates_and_deletes_equals_the_source() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let dedup = [
        "--sync-mode",
        "incremental",
        "--destination-sync-mode",
        "append-dedup",
    ];
    let first = [
        user(1, "ada", 1, false),
        user(2, "grace", 1, false),
        user(3, "alan", 1, false),
        user(2, "grace hopper", 2, false),
        state_line(1),
        user(4, "edsger", 1, false),
    ];
    sandbox.write("records", &(first.join("\n") + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &url_config(&dst)), &dedup);
    let q = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM users";
    assert_eq!(dst.sql(q), "1:ada,2:grace hopper,3:alan,4:edsger");

    // An update, a delete, a stale update that must lose, a delete of a
    // row that never existed, and a new row deleted in the same batch.
    let second = [
        user(1, "ada lovelace", 5, false),
        user(3, "alan", 2, true),
        user(4, "stale", 0, false),
        user(9, "ghost", 1, true),
        user(5, "barbara", 1, false),
        state_line(2),
        user(6, "short-lived", 1, false),
        user(6, "short-lived", 2, true),
    ];
    sandbox.write("records", &(second.join("\n") + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &url_config(&dst)), &dedup);
    assert_eq!(
        dst.sql(q),
        "1:ada lovelace,2:grace hopper,4:edsger,5:barbara"
    );
    assert_eq!(
        dst.sql("SELECT count(*) FROM users"),
        "4",
        "one row per key"
    );
}

/// A configured catalog of the file source's `users` stream.
fn users_catalog(sandbox: &Sandbox, mode: &str, generation: i64, minimum: i64) -> String {
    let catalog = serde_json::json!({"streams": [{
        "stream": {"name": "users", "json_schema": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "seq": {"type": "integer"}}},
            "supported_sync_modes": ["full_refresh", "incremental"]},
        "sync_mode": "full_refresh", "destination_sync_mode": mode,
        "primary_key": [["id"]], "cursor_field": ["seq"],
        "generation_id": generation, "minimum_generation_id": minimum, "sync_id": generation
    }]});
    let path = sandbox.write("catalog.json", &catalog.to_string());
    path.display().to_string()
}

#[test]
fn postgres_refresh_replaces_the_table_in_append_and_append_dedup() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    let q = "SELECT string_agg(id || ':' || name || ':' || _airbyte_generation_id, ',' \
             ORDER BY id, name) FROM users";
    let sync = |catalog: &str| {
        sandbox.sync(
            (&source, "{}"),
            ("postgres", &config),
            &["--catalog", catalog],
        );
    };
    for mode in ["append", "append_dedup"] {
        let old = [user(1, "ada", 1, false), user(2, "grace", 1, false)];
        sandbox.write("records", &(old.join("\n") + "\n"));
        let catalog = users_catalog(&sandbox, mode, 1, 0);
        sync(&catalog);
        sync(&catalog);
        let appended = if mode == "append" {
            "1:ada:1,1:ada:1,2:grace:1,2:grace:1"
        } else {
            "1:ada:1,2:grace:1"
        };
        assert_eq!(dst.sql(q), appended, "{mode}");

        // A refresh (generation 2, nothing older kept) whose source fails
        // halfway leaves the table as it was.
        let new = [
            user(2, "grace hopper", 2, false),
            state_line(1),
            user(3, "alan", 1, false),
            user(3, "alan turing", 2, false),
        ];
        sandbox.write("records", &(new.join("\n") + "\n"));
        let refresh = users_catalog(&sandbox, mode, 2, 2);
        sandbox.write("fail", "");
        let run = sandbox.run(&sync_args(&source, &config, &["--catalog", &refresh]));
        assert_eq!(run.code(), 1, "{}", run.stderr());
        assert_eq!(
            dst.sql(q),
            appended,
            "{mode}: a failed refresh changes nothing"
        );

        // The refresh that lands holds only the new generation.
        std::fs::remove_file(sandbox.path("fail")).unwrap();
        sync(&refresh);
        let refreshed = if mode == "append" {
            "2:grace hopper:2,3:alan:2,3:alan turing:2"
        } else {
            "2:grace hopper:2,3:alan turing:2"
        };
        assert_eq!(dst.sql(q), refreshed, "{mode}");
        let leftovers = "SELECT count(*) FROM pg_class WHERE relname LIKE '_sluice_new%'";
        assert_eq!(dst.sql(leftovers), "0", "{mode}");
        dst.sql("DROP TABLE users");
    }
}

#[test]
fn postgres_overwrite_names_dependent_views_and_drop_cascade_drops_them() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    let overwrite = ["--destination-sync-mode", "overwrite"];
    sandbox.write("records", &(user(1, "ada", 1, false) + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &config), &overwrite);
    dst.sql("CREATE VIEW names AS SELECT name FROM users");

    // Stopped before loading, naming the view and the way out.
    sandbox.write("records", &(user(2, "grace", 1, false) + "\n"));
    let run = sandbox.run(&sync_args(&source, &config, &overwrite));
    assert_eq!(run.code(), 1);
    let err = format!("{}{}", run.stdout(), run.stderr());
    assert!(err.contains("view names depends on it"), "{err}");
    assert!(err.contains("drop_cascade"), "{err}");
    assert_eq!(dst.sql("SELECT string_agg(name, ',') FROM names"), "ada");

    let cascade = serde_json::json!({ "url": dst.url, "drop_cascade": true }).to_string();
    sandbox.sync((&source, "{}"), ("postgres", &cascade), &overwrite);
    assert_eq!(dst.sql("SELECT string_agg(name, ',') FROM users"), "grace");
    assert_eq!(
        dst.sql("SELECT count(*) FROM pg_views WHERE viewname = 'names'"),
        "0"
    );
}

/// Starts `sluice sync` in its own process group; waits until `ready`
/// holds, then kills the whole group with SIGKILL.
fn kill_when(sandbox: &Sandbox, args: &[&str], ready: impl Fn() -> bool) {
    use std::os::unix::process::CommandExt;
    let mut child = sandbox
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start sluice");
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the sync never got far enough"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = child.id();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
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

#[test]
fn postgres_killed_overwrite_leaves_the_old_table_and_a_rerun_cleans_up() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    sandbox.write("records", &(user(1, "old", 1, false) + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &config), &[]);
    assert_eq!(dst.sql("SELECT name FROM users"), "old");

    // Thousands of rows and a checkpoint (which commits the new table's
    // rows), then the source hangs and sluice is killed.
    let mut lines: Vec<String> = (1..=5000).map(|i| user(i, "new", 1, false)).collect();
    lines.push(state_line(1));
    sandbox.write("records", &(lines.join("\n") + "\n"));
    sandbox.write("hang", "");
    let new_rows = || {
        dst.sql(
            "SELECT coalesce(sum(n_live_tup + n_tup_ins), 0) FROM pg_stat_user_tables \
             WHERE relname LIKE '\\_sluice\\_new\\_%'",
        )
        .parse::<i64>()
        .unwrap_or(0)
            > 0
            || dst
                .sql(
                    "SELECT count(*) FROM pg_class c WHERE relname LIKE '\\_sluice\\_new\\_%' \
                     AND pg_relation_size(c.oid) > 0",
                )
                .trim()
                != "0"
    };
    kill_when(&sandbox, &sync_args(&source, &config, &[]), new_rows);
    assert_eq!(
        dst.sql("SELECT string_agg(name, ',') FROM users"),
        "old",
        "readers still see the whole old table"
    );

    std::fs::remove_file(sandbox.path("hang")).unwrap();
    let summary = sandbox.sync((&source, "{}"), ("postgres", &config), &[]);
    assert_eq!(summary["records"], 5000);
    assert_eq!(
        dst.sql("SELECT count(*), min(name), max(name) FROM users"),
        "5000|new|new"
    );
    assert_eq!(
        dst.sql("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_sluice%' AND relkind = 'r'"),
        "0",
        "no leftover tables"
    );
}

#[test]
fn postgres_killed_append_dedup_leaves_no_duplicates_after_a_rerun() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    let mut lines = Vec::new();
    for i in 1..=3000 {
        lines.push(user(i, "v1", 1, false));
        if i % 250 == 0 {
            lines.push(state_line(i));
        }
    }
    sandbox.write("records", &(lines.join("\n") + "\n"));
    sandbox.write("hang", "");
    let dedup = [
        "--sync-mode",
        "incremental",
        "--destination-sync-mode",
        "append-dedup",
    ];
    let committed = || {
        crate::common::psql(&dst.url, "SELECT count(*) FROM users")
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            > 0
    };
    kill_when(&sandbox, &sync_args(&source, &config, &dedup), committed);

    // The rerun sends everything again, some of it updated.
    std::fs::remove_file(sandbox.path("hang")).unwrap();
    let mut again: Vec<String> = (1..=3000).map(|i| user(i, "v2", 2, false)).collect();
    again.push(state_line(1));
    sandbox.write("records", &(again.join("\n") + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &config), &dedup);
    assert_eq!(
        dst.sql("SELECT count(*), count(DISTINCT id), min(name), max(name) FROM users"),
        "3000|3000|v2|v2"
    );
}

#[test]
fn postgres_odd_names_work_on_both_sides() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(
        r#"CREATE SCHEMA "Odd Schema";
        CREATE TABLE "Odd Schema"."My ""Table"" ü" ("Id" int PRIMARY KEY, "with space" text, "ünï" int, "a""b" text, "UPPER" bool);
        INSERT INTO "Odd Schema"."My ""Table"" ü" VALUES (1, 'x', 2, 'q"t', true), (2, NULL, NULL, 'it''s', false);"#,
    );
    let sandbox = Sandbox::new();
    let config = serde_json::json!({"url": src.url, "schemas": ["Odd Schema"]}).to_string();
    let summary = sandbox.sync(("postgres", &config), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(summary["records"], 2, "{summary}");
    let q = r#"SELECT string_agg(concat_ws('|', "Id", "with space", "ünï", "a""b", "UPPER"), ',' ORDER BY "Id") FROM "Odd Schema"."My ""Table"" ü""#;
    assert_eq!(dst.sql(q), src.sql(q));
    assert_eq!(dst.sql(q), "1|x|2|q\"t|t,2|it's|f");

    // append_dedup by the odd key, twice: still one row per key.
    for _ in 0..2 {
        sandbox.sync(
            ("postgres", &config),
            ("postgres", &url_config(&dst)),
            &["--destination-sync-mode", "append-dedup"],
        );
    }
    assert_eq!(
        dst.sql(r#"SELECT count(*) FROM "Odd Schema"."My ""Table"" ü""#),
        "2"
    );
}

#[test]
fn postgres_new_columns_are_added_to_the_table() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql("CREATE TABLE t (id int PRIMARY KEY, a text); INSERT INTO t VALUES (1, 'one');");
    let sandbox = Sandbox::new();
    let append = ["--destination-sync-mode", "append"];
    sandbox.sync(
        ("postgres", &url_config(&src)),
        ("postgres", &url_config(&dst)),
        &append,
    );
    src.sql("ALTER TABLE t ADD COLUMN b timestamptz; UPDATE t SET b = '2024-05-06 07:08:09+00';");
    sandbox.sync(
        ("postgres", &url_config(&src)),
        ("postgres", &url_config(&dst)),
        &append,
    );
    assert_eq!(
        dst.sql("SELECT string_agg(id || ':' || a || ':' || coalesce(b::text, '-'), ',' ORDER BY b NULLS FIRST) FROM t"),
        "1:one:-,1:one:2024-05-06 07:08:09+00"
    );
    assert_eq!(
        dst.sql("SELECT data_type FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'"),
        "timestamp with time zone"
    );
}

/// A sync from postgres with `config` to devnull, which must fail: what it
/// printed.
fn failed_sync(sandbox: &Sandbox, config: &str) -> String {
    let run = sandbox.run(&[
        "sync",
        "--source",
        "postgres",
        "--source-config",
        config,
        "--destination",
        "devnull",
    ]);
    assert_ne!(run.code(), 0);
    format!("{}{}", run.stdout(), run.stderr())
}

#[test]
fn postgres_wrong_password_is_a_clear_error_without_the_password() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let secret = "wr0ng-s3cret-pw";
    let url = db.url.replacen(":sluice@", &format!(":{secret}@"), 1);
    assert!(url.contains(secret), "{url}");
    let fields = serde_json::json!({
        "host": "localhost", "port": 5432, "database": db.name,
        "username": "sluice", "password": secret,
    })
    .to_string();
    for config in [serde_json::json!({ "url": url }).to_string(), fields] {
        let all = failed_sync(&sandbox, &config);
        assert!(all.contains("password authentication failed"), "{all}");
        assert!(!all.contains(secret), "{all}");
        let check = sandbox.connector("check", "postgres", &config);
        let all = format!("{}{}", check.stdout(), check.stderr());
        assert!(all.contains("password authentication failed"), "{all}");
        assert!(!all.contains(secret), "{all}");
    }
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
    // A small table is read in one piece.
    let small = serde_json::json!({"url": src.url, "max_parallel": 3}).to_string();
    let summary = sandbox.sync(("postgres", &small), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(dst.sql(q), src.sql(q));
    let log = std::fs::read_to_string(summary["log_file"].as_str().expect("log_file")).unwrap();
    assert!(!log.contains("key ranges"), "{log}");
}

#[test]
fn postgres_a_stream_without_fields_keeps_each_record_whole() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"free","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#;
    let source = sandbox.script(
        "source",
        &format!(
            "case \"$1\" in\n  spec) echo '{{\"type\":\"SPEC\",\"spec\":{{\"connectionSpecification\":{{\"type\":\"object\"}}}}}}' ;;\n  discover) echo '{catalog}' ;;\n  read) echo '{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"free\",\"data\":{{\"a\":1,\"b\":[\"x\"]}},\"emitted_at\":1}}}}' ;;\nesac"
        ),
    );
    sandbox.sync((&source, "{}"), ("postgres", &url_config(&dst)), &[]);
    assert_eq!(
        dst.sql("SELECT _airbyte_data::text FROM free"),
        r#"{"a": 1, "b": ["x"]}"#
    );
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
fn postgres_names_longer_than_postgres_keeps_still_append() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let long = "a_column_name_that_is_much_longer_than_the_sixty_three_bytes_postgres_keeps";
    let catalog = format!(
        r#"{{"type":"CATALOG","catalog":{{"streams":[{{"name":"wide","json_schema":{{"type":"object","properties":{{"{long}":{{"type":"integer"}}}}}},"supported_sync_modes":["full_refresh"]}}]}}}}"#
    );
    let source = sandbox.script(
        "source",
        &format!(
            "case \"$1\" in\n  spec) echo '{{\"type\":\"SPEC\",\"spec\":{{\"connectionSpecification\":{{\"type\":\"object\"}}}}}}' ;;\n  discover) echo '{catalog}' ;;\n  read) echo '{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"wide\",\"data\":{{\"{long}\":7}},\"emitted_at\":1}}}}' ;;\nesac"
        ),
    );
    for _ in 0..2 {
        sandbox.sync(
            (&source, "{}"),
            ("postgres", &url_config(&dst)),
            &["--destination-sync-mode", "append"],
        );
    }
    assert_eq!(
        dst.sql(&format!(
            "SELECT string_agg(\"{}\"::text, ',') FROM wide",
            &long[..63]
        )),
        "7,7"
    );
}

#[test]
fn postgres_sslmode_encrypts_and_verifies_the_server_certificate() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let ca = std::env::var("SLUICE_TEST_PG_CA").ok();
    if !crate::common::require(ca.is_some(), "the test server's CA (SLUICE_TEST_PG_CA)") {
        return;
    }
    let ca = std::fs::read_to_string(ca.unwrap()).expect("the CA certificate");
    // What the connection itself sees: whether it is encrypted.
    db.sql("CREATE VIEW tls AS SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    let sandbox = Sandbox::new();
    let config = |host: &str, sslmode: Value| {
        serde_json::json!({
            "host": host, "port": 5432, "database": db.name,
            "username": "sluice", "password": "sluice", "sslmode": sslmode,
        })
        .to_string()
    };
    let out = sandbox.path("out");
    let destination = serde_json::json!({ "path": out }).to_string();
    let encrypted = |config: &str| {
        sandbox.sync(("postgres", config), ("jsonl", &destination), &[]);
        let rows = crate::common::read_jsonl(&out.join("public").join("tls.jsonl"));
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0]["ssl"]
            .as_bool()
            .unwrap_or_else(|| panic!("{:?}", rows[0]))
    };
    assert!(!encrypted(&config("localhost", "disable".into())));
    assert!(encrypted(&config("localhost", "require".into())));
    let verify_full = serde_json::json!({"mode": "verify-full", "ca_certificate": ca});
    assert!(encrypted(&config("localhost", verify_full.clone())));
    // Airbyte's spelling of the field, and verify-ca, which does not check
    // the name the certificate was issued for.
    let verify_ca = serde_json::json!({"mode": "verify-ca", "ca_certificate": ca});
    let airbyte = config("127.0.0.1", verify_ca).replace("\"sslmode\"", "\"ssl_mode\"");
    assert!(encrypted(&airbyte));

    // Refused: a name the certificate is not for, and a CA nobody gave.
    let refused = [
        config("127.0.0.1", verify_full),
        config("localhost", serde_json::json!({"mode": "verify-ca"})),
    ];
    for config in refused {
        let all = failed_sync(&sandbox, &config);
        assert!(all.contains("certificate"), "{all}");
        assert!(all.contains("ca_certificate"), "says what to do: {all}");
    }
}

/// One value per column of [`binary_and_text_catalog`], by row: usual shapes
/// (sent in COPY's binary format), shapes left to COPY text (an exponent,
/// seven digits of fraction, an offset on a time without zone...) and
/// values that do not fit.
const EDGE_ROWS: &[&str] = &[
    r#""tz":"2024-01-02T03:04:05Z","ts":"2024-01-02T03:04:05.000001","d":"2024-02-29","t":"00:00:00","ttz":"12:00:00+05:30","n":0,"i":9223372036854775807,"b":true,"s":"tab\t back\\ \u00e9 🚀 \"q\"","j":{"a":[1,"\u00e9",null]}"#,
    r#""tz":"2024-01-02 03:04:05.5+05:30","ts":"1999-12-31 23:59:59","d":"0001-01-01","t":"23:59:59.999999","ttz":"00:00:00-11","n":-0.0,"i":-9223372036854775808,"b":false,"s":{"x":1},"j":"just a string""#,
    r#""tz":"2024-01-02T03:04:05.123456-11","ts":"2024-02-29T12:00:00.5","d":"9999-12-31","t":"12:34:56.5","ttz":"23:59:59.1Z","n":12345678901234567890.123456789,"i":3.0,"b":true,"s":"","j":[]"#,
    r#""tz":"0001-01-01T00:00:00+14:00","ts":"0001-01-01T00:00:00","d":"1970-01-01","t":"01:02:03","ttz":"01:02:03","n":-0.000001,"i":-1,"b":false,"s":12,"j":{}"#,
    r#""tz":"9999-12-31T23:59:59.999999Z","ts":"9999-12-31T23:59:59.999999","d":"2000-01-01","t":"00:00:00.000001","ttz":"00:00:00+0130","n":10000.00010000,"i":0,"b":true,"s":"x","j":1.5"#,
    r#""tz":"2024-02-29T00:00:00-0330","ts":"2000-01-01T00:00:00","d":"1999-12-31","t":"09:00:00","ttz":"09:00:00-03","n":99999999,"i":42,"b":true,"s":"y","j":true"#,
    r#""tz":"2024-01-02T03:04:05","ts":"2024-01-02T03:04:05","d":"2024-01-02","t":"03:04:05","ttz":"03:04:05Z","n":"NaN","i":7,"b":true,"s":"z","j":null"#,
    r#""tz":"2024-01-02T03:04:05.1234567Z","ts":"2024-01-02T03:04:05+02:00","d":"2024-01-02 BC","t":"24:00:00","ttz":"03:04:05.1234567+01","n":1.5e3,"i":1,"b":true,"s":"w","j":1"#,
    r#""tz":"infinity","ts":"2024-01-02T03:04","d":"infinity","t":"03:04","ttz":"03:04+01","n":"-Infinity","i":2,"b":true,"s":"v","j":2"#,
    r#""tz":"2024-13-01T00:00:00Z","ts":"2024-01-02T03:04:05é","d":"2023-02-29","t":"25:00:00","ttz":"x","n":"12","i":"7","b":"yes","s":"\u0000","j":"\ud800""#,
];

/// A source script: answers spec, discover with the CATALOG line
/// `catalog`, and on read prints the file `records` in the sandbox.
fn catalog_source(sandbox: &Sandbox, catalog: &str) -> String {
    sandbox.script(
        "source",
        &format!(
            "case \"$1\" in\n  spec) echo '{{\"type\":\"SPEC\",\"spec\":{{\"connectionSpecification\":{{\"type\":\"object\"}}}}}}' ;;\n  discover) echo '{catalog}' ;;\n  read) cat \"$(dirname \"$0\")/records\" ;;\nesac"
        ),
    )
}

fn binary_and_text_catalog() -> String {
    let props = r#"{"id":{"type":"integer"},"tz":{"type":"string","airbyte_type":"timestamp_with_timezone"},"ts":{"type":"string","airbyte_type":"timestamp_without_timezone"},"d":{"type":"string","format":"date"},"t":{"type":"string","airbyte_type":"time_without_timezone"},"ttz":{"type":"string","airbyte_type":"time_with_timezone"},"n":{"type":"number"},"i":{"type":"integer"},"b":{"type":"boolean"},"s":{"type":"string"},"j":{"type":"object"}}"#;
    let stream = |name: &str| {
        format!(
            r#"{{"name":"{name}","json_schema":{{"type":"object","properties":{props}}},"supported_sync_modes":["full_refresh"]}}"#
        )
    };
    format!(
        r#"{{"type":"CATALOG","catalog":{{"streams":[{},{}]}}}}"#,
        stream("bin"),
        stream("txt")
    )
}

#[test]
fn postgres_binary_and_text_copy_store_the_same_values() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let catalog = binary_and_text_catalog();
    let source = catalog_source(&sandbox, &catalog);
    let mut records = String::new();
    for stream in ["bin", "txt"] {
        for (id, row) in EDGE_ROWS.iter().enumerate() {
            records.push_str(&format!(
                r#"{{"type":"RECORD","record":{{"stream":"{stream}","data":{{"id":{id},{row}}},"emitted_at":1700000000123}}}}"#
            ));
            records.push('\n');
        }
    }
    sandbox.write("records", &records);
    let destination = url_config(&dst);
    sandbox.sync((&source, "{}"), ("postgres", &destination), &[]);
    // A column type sluice does not write in binary (integer for `id`)
    // sends every row of `txt` as COPY text.
    dst.sql("TRUNCATE bin, txt; ALTER TABLE txt ALTER COLUMN id TYPE integer");
    sandbox.sync((&source, "{}"), ("postgres", &destination), &[]);

    let cols = [
        "_airbyte_extracted_at",
        "_airbyte_meta - 'sync_id'",
        "_airbyte_generation_id",
        "tz",
        "ts",
        "d",
        "t",
        "ttz",
        "n",
        "i",
        "b",
        "s",
        "j",
    ];
    let bin = dump(&dst, "bin", &cols);
    let txt = dump(&dst, "txt", &cols);
    assert_eq!(bin, txt);
    // Overwrite loads a new table whose `_airbyte_meta` defaults to a row's
    // without changes: binary rows leave it out, rows with changes go as
    // text.
    let overwrite = ["--streams", "bin", "--destination-sync-mode", "overwrite"];
    sandbox.sync((&source, "{}"), ("postgres", &destination), &overwrite);
    // (A sync has a generation of its own.)
    let same_sync: Vec<&str> = cols
        .into_iter()
        .filter(|c| *c != "_airbyte_generation_id")
        .collect();
    assert_eq!(dump(&dst, "bin", &same_sync), dump(&dst, "txt", &same_sync));
    assert_eq!(
        dst.sql("SELECT count(*) FROM information_schema.columns WHERE column_default IS NOT NULL"),
        "0"
    );
    assert_eq!(bin.lines().count(), EDGE_ROWS.len(), "{bin}");
    // Spot checks of what both hold.
    for expected in [
        "0|2023-11-14 22:13:20.123+00|{\"changes\": []}|",
        "|2024-01-02 03:04:05+00|2024-01-02 03:04:05.000001|2024-02-29|00:00:00|12:00:00+05:30|0|\
         9223372036854775807|true|tab\t back\\ é 🚀 \"q\"|{\"a\": [1, \"é\", null]}\n",
        "|0001-12-31 10:00:00+00 BC|",
        "|10000.00010000|0|true|x|1.5\n",
        "|2024-01-02 03:04:05.123457+00|2024-01-02 03:04:05|2024-01-02 BC|24:00:00|",
    ] {
        assert!(bin.contains(expected), "{expected} in\n{bin}");
    }
    let last = bin.lines().last().unwrap();
    assert!(
        last.ends_with("|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>|<NULL>"),
        "{last}"
    );
    assert_eq!(
        dst.sql("SELECT jsonb_array_length(_airbyte_meta->'changes') FROM bin WHERE id = 9"),
        "10"
    );
}

#[test]
fn postgres_source_changes_are_kept_in_airbyte_meta() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"m","json_schema":{"type":"object","properties":{"id":{"type":"integer"},"n":{"type":"number"}}},"supported_sync_modes":["full_refresh"],"source_defined_primary_key":[["id"]]}]}}"#;
    let source = catalog_source(&sandbox, catalog);
    let truncated = r#"{"changes":[{"field":"big","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"}]}"#;
    // Sent in binary; a misfit too; COPY text (an exponent); no meta; the
    // careful reader (an escaped key in the envelope, below).
    let records = [
        (r#"{"id":1,"n":5}"#, Some(truncated)),
        (r#"{"id":2,"n":"five"}"#, Some(truncated)),
        (r#"{"id":3,"n":1.5e3}"#, Some(truncated)),
        (r#"{"id":4,"n":4}"#, None),
        (r#"{"id":5,"n":5}"#, Some(truncated)),
    ];
    let mut lines = String::new();
    for (data, meta) in records {
        let meta = meta.map(|m| format!(r#","meta":{m}"#)).unwrap_or_default();
        lines.push_str(&format!(
            r#"{{"type":"RECORD","record":{{"stream":"m","data":{data},"emitted_at":1{meta}}}}}"#
        ));
        lines.push('\n');
    }
    let lines = lines.replace(
        r#""stream":"m","data":{"id":5"#,
        r#""str\u0065am":"m","data":{"id":5"#,
    );
    sandbox.write("records", &lines);
    // Append copies into the table; overwrite into a new one, and
    // append_dedup into a staging table, whose `_airbyte_meta` defaults to a
    // row's without changes.
    for mode in ["append", "overwrite", "append-dedup"] {
        let mode = ["--destination-sync-mode", mode];
        sandbox.sync((&source, "{}"), ("postgres", &url_config(&dst)), &mode);
        assert_eq!(
            dst.sql(
            "SELECT id || '|' || coalesce(n::text, '-') || '|' \
             || (SELECT coalesce(string_agg(c->>'field' || ':' || (c->>'change') || ':' || (c->>'reason'), ',' ORDER BY ord), '') \
                 FROM jsonb_array_elements(_airbyte_meta->'changes') WITH ORDINALITY AS x(c, ord)) \
             FROM m ORDER BY id"
        ),
        "1|5|big:TRUNCATED:SOURCE_FIELD_SIZE_LIMITATION\n\
         2|-|big:TRUNCATED:SOURCE_FIELD_SIZE_LIMITATION,n:NULLED:DESTINATION_TYPECAST_ERROR\n\
         3|1500|big:TRUNCATED:SOURCE_FIELD_SIZE_LIMITATION\n\
         4|4|\n\
         5|5|big:TRUNCATED:SOURCE_FIELD_SIZE_LIMITATION",
            "{mode:?}"
        );
    }
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

    // A catalog stream whose schema went away fails the read before any
    // stream is sent, so overwrite keeps what the destination has.
    let both = config(&["public", "sales"]);
    sync(&both, &[]).expect_code(0);
    let catalog = configured_catalog(&sandbox, ("postgres", &both), "overwrite");
    db.sql("INSERT INTO public.users VALUES (2); DROP SCHEMA sales CASCADE;");
    let run = sync(&both, &["--catalog", catalog.to_str().unwrap()]);
    run.expect_code(1);
    let failure = &run.json()["failure"];
    assert_eq!(failure["failure_type"], "config_error", "{failure}");
    assert_eq!(
        failure["message"],
        "stream `sales.orders`: the schema `sales` does not exist or cannot be used; run discover again"
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
