//! Values on their way through: every PostgreSQL type round-trips and
//! discover types it, values that do not fit their column are nulled and
//! recorded in `_airbyte_meta` (with the source's own changes), and rows
//! sent in COPY's binary format store what rows sent as text do.

use super::{connector, url_config};
use crate::common::{PgDatabase, Sandbox};

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
    c_bytea bytea, c_enum mood, c_interval interval, c_inet inet,
    c_money money, c_oid oid,
    c_float8_arr float8[], c_numeric_arr numeric[], c_bool_arr boolean[],
    c_date_arr date[], c_ts_arr timestamp[], c_tstz_arr timestamptz[],
    c_time_arr time[], c_timetz_arr timetz[], c_jsonb_arr jsonb[],
    c_bytea_arr bytea[], c_uuid_arr uuid[], c_enum_arr mood[]
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
  '\x00ff10', 'it''s "ok"', '1 year 2 mons 3 days 04:05:06.5', '192.168.0.1/24',
  12.34, 4000000000,
  '{1.5,NULL,-2e-5}', '{1.5,NULL,-0.000001}', '{t,NULL,f}',
  '{2024-02-29,NULL}', '{"2024-01-02 03:04:05.5",NULL}', '{"2024-01-02 03:04:05+02",NULL}',
  '{23:59:59.999999,NULL}', '{"12:00:00+05:30",NULL}',
  ARRAY['{"a": 1}'::jsonb, NULL, '[1, "x"]'],
  '{"\\x00ff",NULL,"\\x"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{sad,NULL,happy}'),
 (2, -1, 0, -9223372036854775808,
  -0.000001, -1e-300, 3.5e30,
  '', 'x', 'abcd',
  false, '0001-01-01', '00:00:00', '00:00:00-11',
  '1999-12-31 23:59:59', '1970-01-01 00:00:00+00',
  '[]', '"just a string"', '00000000-0000-0000-0000-000000000000',
  '{}', '{}',
  '', 'sad', '-5 days', '::1',
  -1.5, 0,
  '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
-- Values JSON and RFC 3339 have no words for: not-a-number and infinities,
-- infinite, BC and five-digit-year dates and times, 24:00, offsets in
-- seconds, multi-dimensional arrays.
INSERT INTO all_types (id, c_numeric, c_float8, c_real, c_date, c_ts, c_tstz, c_time, c_timetz,
    c_float8_arr, c_numeric_arr, c_date_arr, c_ts_arr, c_tstz_arr) VALUES
 (4, 'NaN', 'Infinity', '-Infinity', 'infinity', '-infinity', 'infinity', '24:00:00',
  '00:00:00+05:53:28', '{NaN,Infinity,-Infinity}', '{NaN,Infinity}', '{infinity,-infinity}',
  '{infinity}', '{-infinity}'),
 (5, '-Infinity', 'NaN', 'NaN', '2024-01-02 BC', '0001-12-31 10:00:00 BC',
  '0001-12-31 10:00:00+00 BC', '24:00:00', '23:59:59-11', NULL, NULL,
  '{"2024-01-02 BC",12345-06-07}', '{"0001-12-31 10:00:00 BC"}', '{"0001-12-31 10:00:00+00 BC"}');
INSERT INTO all_types (id, c_date, c_ts, c_tstz, c_timetz_arr, c_time_arr) VALUES
 (6, '12345-06-07', '12345-06-07 08:09:10', '12345-06-07 08:09:10.5+00',
  '{00:00:00-11,12:00:00+05:53:28,24:00:00+01}', '{24:00:00}');
INSERT INTO all_types (id, c_int_arr, c_text_arr, c_float8_arr, c_numeric_arr, c_bool_arr,
    c_date_arr, c_ts_arr, c_tstz_arr, c_time_arr, c_timetz_arr, c_jsonb_arr, c_uuid_arr,
    c_enum_arr) VALUES
 (7, '{{1,NULL},{3,4}}', '{{{a,NULL}},{{b,c}}}', '{{1.5},{NaN}}', '{{1},{NULL}}',
  '{{t},{NULL}}', '{{2024-01-01},{infinity}}', '{{"2024-01-01 00:00:00"}}',
  '{{"2024-01-01 00:00:00+00"}}', '{{"01:02:03"}}', '{{"01:02:03+01"}}',
  ARRAY[ARRAY['{"a": 1}'::jsonb], ARRAY[NULL::jsonb]],
  '{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}', '{{sad},{happy}}');
"#;

/// The number of rows in [`TYPES_TABLE`].
const TYPES_ROWS: usize = 7;

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
    ("c_money::numeric::text", "c_money::text"),
    ("c_oid::text", "c_oid::text"),
    ("to_jsonb(c_float8_arr)::text", "c_float8_arr::text"),
    ("to_jsonb(c_numeric_arr)::text", "c_numeric_arr::text"),
    ("to_jsonb(c_bool_arr)::text", "c_bool_arr::text"),
    ("to_jsonb(c_date_arr)::text", "c_date_arr::text"),
    ("to_jsonb(c_ts_arr)::text", "c_ts_arr::text"),
    ("to_jsonb(c_tstz_arr)::text", "c_tstz_arr::text"),
    ("to_jsonb(c_time_arr)::text", "c_time_arr::text"),
    ("to_jsonb(c_timetz_arr)::text", "c_timetz_arr::text"),
    ("to_jsonb(c_jsonb_arr)::text", "c_jsonb_arr::text"),
    (
        "CASE WHEN c_bytea_arr IS NOT NULL THEN to_jsonb(ARRAY(\
         SELECT encode(x, 'base64') FROM unnest(c_bytea_arr) x))::text END",
        "c_bytea_arr::text",
    ),
    ("to_jsonb(c_uuid_arr)::text", "c_uuid_arr::text"),
    ("to_jsonb(c_enum_arr)::text", "c_enum_arr::text"),
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
    // Not-a-number and the infinities are strings.
    assert_eq!(
        props["c_numeric"]["type"],
        serde_json::json!(["null", "number", "string"])
    );
    assert_eq!(props["c_float8"]["pattern"], "^(NaN|-?Infinity)$");
    assert_eq!(props["c_tstz"]["airbyte_type"], "timestamp_with_timezone");
    assert_eq!(props["c_ts"]["airbyte_type"], "timestamp_without_timezone");
    assert_eq!(props["c_timetz"]["airbyte_type"], "time_with_timezone");
    assert_eq!(props["c_date"]["airbyte_type"], "date");
    assert_eq!(props["c_bytea"]["airbyte_type"], "binary_data");
    assert_eq!(
        props["c_int_arr"]["type"],
        serde_json::json!(["null", "array"])
    );
    // Elements may be NULL, or arrays of another dimension.
    assert_eq!(
        props["c_int_arr"]["items"]["type"],
        serde_json::json!(["null", "array", "integer"])
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
    assert_eq!(summary["records"], TYPES_ROWS, "{summary}");

    let src_exprs: Vec<&str> = COMPARE.iter().map(|(s, _)| *s).collect();
    let dst_exprs: Vec<&str> = COMPARE.iter().map(|(_, d)| *d).collect();
    let expected = dump(&src, "all_types", &src_exprs);
    let got = dump(&dst, "public.all_types", &dst_exprs);
    assert_eq!(got, expected);
    assert!(expected.contains("ünïcödé 🚀"), "{expected}");
    assert_eq!(
        dst.sql("SELECT count(*) FROM all_types"),
        TYPES_ROWS.to_string()
    );

    // Typed columns, Airbyte's columns, and nothing nulled on the way.
    let types = dst.sql(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name) \
         FROM information_schema.columns WHERE table_name = 'all_types' \
         AND column_name IN ('_airbyte_raw_id', '_airbyte_extracted_at', '_airbyte_meta', \
         '_airbyte_generation_id', 'c_int4', 'c_tstz', 'c_jsonb', 'c_bool', 'c_date', \
         'c_numeric', 'c_float8', 'c_real', 'c_money', 'c_oid', 'c_ts', 'c_time', 'c_timetz', \
         'c_float8_arr')",
    );
    assert_eq!(
        types,
        "_airbyte_extracted_at timestamp with time zone, _airbyte_generation_id bigint, \
         _airbyte_meta jsonb, _airbyte_raw_id uuid, c_bool boolean, c_date date, \
         c_float8 numeric, c_float8_arr jsonb, c_int4 bigint, c_jsonb jsonb, c_money numeric, \
         c_numeric numeric, c_oid bigint, c_real numeric, c_time time without time zone, \
         c_timetz time with time zone, c_ts timestamp without time zone, \
         c_tstz timestamp with time zone"
    );
    assert_eq!(
        dst.sql(
            "SELECT count(DISTINCT _airbyte_raw_id) FROM all_types \
             WHERE _airbyte_meta->'changes' = '[]' AND _airbyte_meta ? 'sync_id' \
             AND _airbyte_extracted_at > now() - interval '1 hour'"
        ),
        TYPES_ROWS.to_string()
    );
}

/// A full refresh from postgres to postgres hands rows over in binary,
/// cast to the destination's columns, without JSON; a sync that renames
/// streams (a prefix) takes the JSON way. Both must store the same: every
/// column of every row of the coverage table, `_airbyte_meta` and the
/// generation included, in a new table and in one that exists.
#[test]
fn postgres_rows_handed_over_in_binary_store_what_records_do() {
    let (Some(src), Some(dst)) = (PgDatabase::create(), PgDatabase::create()) else {
        return;
    };
    src.sql(TYPES_TABLE);
    // More rows than one batch holds, so batches follow each other.
    src.sql(
        "INSERT INTO all_types (id, c_text, c_char, c_numeric, c_real, c_tstz, c_jsonb, c_int_arr) \
         SELECT i, repeat(md5(i::text), 40), 'x', i / 7.0, i / 3.0, \
         '2024-01-01'::timestamptz + i * interval '1 minute', jsonb_build_object('i', i), \
         ARRAY[i, NULL] FROM generate_series(100, 3099) i",
    );
    // The ends of PostgreSQL's ranges, and JSON's null (a null field).
    src.sql(
        "INSERT INTO all_types (id, c_ts, c_tstz, c_date, c_json, c_jsonb) VALUES \
         (8, '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59+00', '5874897-12-31', \
          'null', 'null'), \
         (9, '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00+00 BC', '4714-11-24 BC', \
          '[null]', '{\"a\": null}')",
    );
    let rows = TYPES_ROWS + 3000 + 2;
    let sandbox = Sandbox::new();
    let (source, destination) = (url_config(&src), url_config(&dst));
    for extra in [&[][..], &["--prefix", "j_"][..]] {
        let mut args = vec!["-v", "sync", "--source", "postgres", "--source-config"];
        args.extend([source.as_str(), "--destination", "postgres"]);
        args.extend(["--destination-config", destination.as_str()]);
        args.extend(["--destination-sync-mode", "overwrite"]);
        args.extend(extra);
        let run = sandbox.run(&args);
        run.expect_code(0);
        let handed = run
            .stderr()
            .contains("rows go to the destination in PostgreSQL's binary format");
        assert_eq!(handed, extra.is_empty(), "{}", run.stderr());
    }
    // Each inline sync is a generation of its own (its start time).
    let columns: Vec<String> = dst
        .sql(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) \
             FROM information_schema.columns WHERE table_name = 'all_types' \
             AND column_name NOT LIKE '\\_airbyte\\_%'",
        )
        .split(',')
        .map(|c| format!("\"{c}\"::text"))
        .chain(["_airbyte_meta - 'sync_id'".to_string()])
        .collect();
    let exprs: Vec<&str> = columns.iter().map(String::as_str).collect();
    assert_eq!(exprs.len(), 40, "{exprs:?}");
    let expected = dump(&dst, "public.j_all_types", &exprs);
    assert_eq!(
        dst.sql("SELECT count(*) FROM public.j_all_types"),
        rows.to_string()
    );
    let got = dump(&dst, "public.all_types", &exprs);
    // The first row that differs, not two dumps of megabytes.
    for (g, e) in got.split("\n9").zip(expected.split("\n9")) {
        assert_eq!(g.lines().collect::<Vec<_>>(), e.lines().collect::<Vec<_>>());
    }
    assert_eq!(got, expected);
    assert_eq!(
        dst.sql(
            "SELECT c_ts, c_date, c_jsonb IS NULL, _airbyte_meta->'changes' \
             FROM public.all_types WHERE id = 8"
        ),
        "294276-12-31 23:59:59.999999|5874897-12-31|t|[]"
    );
    // Appended to the table the first sync made: every row twice.
    let mut args = vec!["sync", "--source", "postgres", "--source-config"];
    args.extend([source.as_str(), "--destination", "postgres"]);
    args.extend(["--destination-config", destination.as_str()]);
    args.extend(["--destination-sync-mode", "append"]);
    sandbox.run(&args).expect_code(0);
    let e = exprs.join(", ");
    let twice =
        format!("SELECT {e} FROM public.j_all_types UNION ALL SELECT {e} FROM public.j_all_types");
    assert_eq!(
        dst.sql(&format!(
            "SELECT count(*) FROM ((SELECT {e} FROM public.all_types EXCEPT ALL ({twice})) \
             UNION ALL (({twice}) EXCEPT ALL SELECT {e} FROM public.all_types)) d"
        )),
        "0"
    );
    assert_eq!(
        dst.sql("SELECT count(*), count(DISTINCT _airbyte_raw_id) FROM public.all_types"),
        format!("{}|{}", 2 * rows, 2 * rows)
    );
    // Incremental, deduplicated, checkpointing every 500 rows: the cursor
    // is read beside the rows, and states come between batches.
    let source = serde_json::json!({"url": src.url, "checkpoint_every": 500}).to_string();
    dst.sql("DROP TABLE public.all_types");
    for (prefix, state) in [("i_", "json.state"), ("", "binary.state")] {
        let state = sandbox.path(state);
        let mut args = vec!["-v", "sync", "--source", "postgres", "--source-config"];
        args.extend([source.as_str(), "--destination", "postgres"]);
        args.extend(["--destination-config", destination.as_str()]);
        args.extend([
            "--sync-mode",
            "incremental",
            "--cursor",
            "public.all_types=id",
        ]);
        args.extend([
            "--destination-sync-mode",
            "append-dedup",
            "--prefix",
            prefix,
        ]);
        args.extend(["--state", state.to_str().unwrap()]);
        let run = sandbox.run(&args);
        run.expect_code(0);
        let handed = run.stderr().contains("PostgreSQL's binary format");
        assert_eq!(handed, prefix.is_empty(), "{}", run.stderr());
    }
    // A row longer than the longest line allowed fails the sync, as a
    // line would.
    let mut args = vec!["sync", "--source", "postgres", "--source-config"];
    args.extend([source.as_str(), "--destination", "postgres"]);
    args.extend(["--destination-config", destination.as_str()]);
    args.extend(["--max-line-size", "1000"]);
    let run = sandbox.run(&args);
    run.expect_code(1);
    assert!(
        run.stderr().contains("longer than the 1000-byte limit"),
        "{}",
        run.stderr()
    );
    let json_state = std::fs::read_to_string(sandbox.path("json.state")).unwrap();
    let binary_state = std::fs::read_to_string(sandbox.path("binary.state")).unwrap();
    assert_eq!(binary_state, json_state);
    assert!(
        binary_state.contains("\"cursor\": \"3099\""),
        "{binary_state}"
    );
    let expected = dump(&dst, "public.i_all_types", &exprs);
    assert_eq!(
        dst.sql("SELECT count(*) FROM public.all_types"),
        rows.to_string()
    );
    assert_eq!(dump(&dst, "public.all_types", &exprs), expected);
}

/// Every record of the coverage table is valid against the schema discover
/// gave its stream (JSON Schema draft 7, formats checked): what is sent is
/// what is declared, for every type and for the values JSON and RFC 3339
/// have no words for.
#[test]
fn postgres_records_match_the_discovered_schema() {
    let Some(src) = PgDatabase::create() else {
        return;
    };
    src.sql(TYPES_TABLE);
    let sandbox = Sandbox::new();
    let config = url_config(&src);
    let discover = connector(&sandbox, "discover", &config, &[]);
    discover.expect_code(0);
    let schema = discover.catalog()["streams"][0]["json_schema"].clone();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{e}: {schema:#}"));
    let read = connector(&sandbox, "read", &config, &[]);
    read.expect_code(0);
    let records: Vec<serde_json::Value> = read
        .messages()
        .into_iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| m["record"]["data"].clone())
        .collect();
    assert_eq!(records.len(), TYPES_ROWS);
    let mut broken = Vec::new();
    for data in &records {
        for e in validator.iter_errors(data) {
            let at = e.instance_path().to_string();
            let field = at.split('/').nth(1).unwrap_or_default();
            broken.push(format!(
                "id {}, {at}: {e}; declared {}",
                data["id"], schema["properties"][field]
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
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
