//! Names PostgreSQL quotes or cuts: odd schema, table and column names on
//! both sides, and column names longer than the 63 bytes it keeps.

use super::url_config;
use crate::common::{PgDatabase, Sandbox};

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
