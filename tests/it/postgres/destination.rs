//! The destination's sync modes and tables: append_dedup after updates and
//! deletes, refreshes that replace the table or change nothing, overwrite
//! refused (or cascading) over dependent views, new columns added, and a
//! stream without fields kept whole.

use super::{file_source, state_line, sync_args, url_config, user};
use crate::common::{PgDatabase, Sandbox};

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
