//! Syncs between built-in connectors, and the command line itself.

use crate::common::{configured_catalog, dir_names, read_jsonl, records_by_stream, Sandbox};

fn dest(dir: &std::path::Path) -> String {
    format!(r#"{{"path": "{}"}}"#, dir.display())
}

#[test]
fn sample_to_jsonl_full_refresh_overwrites() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    for count in [30, 20] {
        let config = format!(r#"{{"count": {count}, "streams": ["users", "orders"]}}"#);
        let summary = sandbox.sync(("sample", &config), ("jsonl", &dest(&out)), &[]);
        assert_eq!(summary["records"], 2 * count);
        let counts = records_by_stream(&summary);
        assert_eq!(counts["users"], count);
        assert_eq!(counts["orders"], count);
        // Overwrite: the second run replaces the first run's files.
        assert_eq!(read_jsonl(&out.join("users.jsonl")).len() as u64, count);
        assert_eq!(read_jsonl(&out.join("orders.jsonl")).len() as u64, count);
    }
}

#[test]
fn sample_incremental_resumes_from_the_state_file() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    let state = sandbox.path("state.json");
    let mut total = 0;
    for (count, new) in [(10, 10), (25, 15), (25, 0)] {
        let config = format!(r#"{{"count": {count}, "checkpoint_every": 4}}"#);
        let summary = sandbox.sync(
            ("sample", &config),
            ("jsonl", &dest(&out)),
            &[
                "--sync-mode",
                "incremental",
                "--state",
                state.to_str().unwrap(),
            ],
        );
        assert_eq!(summary["records"], new, "{summary}");
        total += new;
        let rows = read_jsonl(&out.join("users.jsonl"));
        assert_eq!(rows.len() as u64, total, "append mode keeps earlier rows");
        let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (1..=total).collect::<Vec<_>>(),
            "no duplicates, no gaps"
        );
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(
            saved[0]["stream"]["stream_state"]["updated_at"],
            format!("2024-01-01T00:00:{count:02}Z")
        );
    }
}

#[test]
fn csv_file_source_to_csv_destination() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("in")).unwrap();
    sandbox.write(
        "in/people.csv",
        "id,name,score\n1,Ada,3.5\n2,Grace,4\n3,\"Lin, Jr\",\n",
    );
    let source = format!(r#"{{"path": "{}"}}"#, sandbox.path("in/*.csv").display());
    let discover = sandbox.connector("discover", "file", &source);
    discover.expect_code(0);
    let catalog = discover.catalog();
    let props = &catalog["streams"][0]["json_schema"]["properties"];
    assert!(
        props["id"]["type"].to_string().contains("integer"),
        "{props}"
    );
    assert!(
        props["score"]["type"].to_string().contains("number"),
        "{props}"
    );

    let out = sandbox.path("out");
    let summary = sandbox.sync(("file", &source), ("csv", &dest(&out)), &[]);
    assert_eq!(summary["records"], 3);
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut reader = csv::Reader::from_path(&files[0]).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(|r| r.iter().any(|f| f == "Lin, Jr")));
}

#[test]
fn sample_to_devnull_counts_everything() {
    let sandbox = Sandbox::new();
    let config = r#"{"count": 5000, "streams": ["a", "b", "c"], "record_bytes": 100}"#;
    let summary = sandbox.sync(("sample", config), ("devnull", "{}"), &[]);
    assert_eq!(summary["records"], 15000);
    let bytes = summary["bytes"].as_u64().unwrap();
    assert!((1_000_000..2_500_000).contains(&bytes), "bytes {bytes}");
}

#[test]
fn only_the_named_streams_are_synced() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    let summary = sandbox.sync(
        ("sample", r#"{"count": 3, "streams": ["a", "b", "c"]}"#),
        ("jsonl", &dest(&out)),
        &["--streams", "a,c"],
    );
    let counts = records_by_stream(&summary);
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["a", "c"]);
    assert!(!out.join("b.jsonl").exists());

    let missing = sandbox.run(&[
        "sync",
        "--source",
        "sample",
        "--destination",
        "devnull",
        "--streams",
        "nope",
    ]);
    missing.expect_code(2);
    assert!(missing.stderr().contains("nope"), "{}", missing.stderr());
}

#[test]
fn usage_and_config_errors_exit_2_and_say_what_to_fix() {
    let sandbox = Sandbox::new();
    let sync = |source: &str, config: &str| {
        sandbox.run(&[
            "sync",
            "--source",
            source,
            "--source-config",
            config,
            "--destination",
            "devnull",
        ])
    };
    let bad_ref = sync("nosuch", "{}");
    bad_ref.expect_code(2);
    assert!(bad_ref.stderr().contains("nosuch"), "{}", bad_ref.stderr());

    let bad_field = sync("sample", r#"{"count": "many"}"#);
    bad_field.expect_code(2);
    assert!(
        bad_field.stderr().contains("count"),
        "{}",
        bad_field.stderr()
    );

    sync("sample", "{nope").expect_code(2);
    sandbox.run(&["sync"]).expect_code(2);
}

#[test]
fn connector_list_and_spec_work_for_scripts() {
    let sandbox = Sandbox::new();
    let list = sandbox.run(&["-o", "json", "connector", "list"]);
    list.expect_code(0);
    let text = list.stdout();
    for name in ["sample", "file", "jsonl", "csv", "devnull"] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    let spec = sandbox.run(&["-o", "json", "connector", "spec", "jsonl"]);
    spec.expect_code(0);
    let msg = &spec.messages()[0];
    assert_eq!(msg["type"], "SPEC");
    assert!(msg["spec"]["connectionSpecification"]["properties"]["path"].is_object());
}

#[test]
fn summary_and_spec_tables_for_people() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&[
        "sync",
        "--source",
        "sample",
        "--source-config",
        r#"{"count": 1200, "streams": ["users", "orders"]}"#,
        "--destination",
        "devnull",
    ]);
    run.expect_code(0);
    insta::assert_snapshot!("sync_summary", run.stdout());
    let spec = sandbox.run(&["connector", "spec", "sample"]);
    spec.expect_code(0);
    insta::assert_snapshot!("sample_spec", spec.stdout());
}

#[test]
fn prefix_applies_to_records_and_is_reverted_on_states() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    let state = sandbox.path("state.json");
    let summary = sandbox.sync(
        ("sample", r#"{"count": 7, "checkpoint_every": 3}"#),
        ("jsonl", &dest(&out)),
        &[
            "--sync-mode",
            "incremental",
            "--prefix",
            "raw_",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(read_jsonl(&out.join("raw_users.jsonl")).len(), 7);
    assert!(!out.join("users.jsonl").exists());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    // The state file speaks the source's names, so the next run resumes.
    assert_eq!(saved[0]["stream"]["stream_descriptor"]["name"], "users");
    assert_eq!(summary["streams"][0]["checkpoints"], 3);
}

#[test]
fn a_file_source_that_finds_no_file_fails_as_a_config_error_and_keeps_the_destination() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("in")).unwrap();
    sandbox.write("in/users.csv", "id\n1\n2\n");
    let out = sandbox.path("out");
    let good = r#"{"path": "in/users.csv"}"#;
    sandbox.sync(("file", good), ("jsonl", &dest(&out)), &[]);
    let before = std::fs::read_to_string(out.join("users.jsonl")).unwrap();
    assert_eq!(before.lines().count(), 2);
    let dest_config = dest(&out);
    let sync = |config: &str, extra: &[&str]| {
        let mut args = vec!["-o", "json", "sync", "--source", "file"];
        args.extend(["--source-config", config, "--destination", "jsonl"]);
        args.extend(["--destination-config", &dest_config]);
        args.extend(extra);
        sandbox.run(&args)
    };
    let cwd = sandbox.dir.path().canonicalize().unwrap();
    let cwd = cwd.display();

    // A typo, in each form the config takes: discover fails, exit 2.
    for (config, want) in [
        (
            r#"{"path": "nope/*.csv"}"#.to_string(),
            format!("no file matches `nope/*.csv` (stream `file`): the directory nope (in {cwd}) does not exist; check `path`"),
        ),
        (
            r#"{"path": "in/userz.csv", "name": "users"}"#.to_string(),
            format!("no file matches `in/userz.csv` (stream `users`): check `path`: a relative path is looked for from the current directory, {cwd}"),
        ),
        (
            r#"{"streams": [{"name": "users", "path": "in/users.csv"}, {"path": "in/orders_*.csv"}]}"#.to_string(),
            format!("no file matches `in/orders_*.csv` (stream `orders`): check `streams[1].path`: a relative path is looked for from the current directory, {cwd}"),
        ),
    ] {
        let run = sync(&config, &[]);
        run.expect_code(2);
        assert!(run.stderr().contains(&want), "{}", run.stderr());
    }
    let check = sandbox.connector("check", "file", r#"{"path": "nope/*.csv"}"#);
    assert_eq!(check.connection_status()["status"], "FAILED");

    // The files went away after the catalog was made: the source's check,
    // run before anything is read, says so, and overwrite keeps the old
    // file whole (the read itself would fail before it sent anything: see
    // the file source's own tests).
    let catalog = configured_catalog(&sandbox, ("file", good), "overwrite");
    std::fs::remove_file(sandbox.path("in/users.csv")).unwrap();
    let run = sync(good, &["--catalog", catalog.to_str().unwrap()]);
    // A config error before any record moved: the user's to fix, exit 2.
    run.expect_code(2);
    let error = &run.json()["error"];
    assert_eq!(error["class"], "user", "{error}");
    assert_eq!(
        error["message"],
        format!("the source fails its check: no file matches `in/users.csv` (stream `users`): check `path`: a relative path is looked for from the current directory, {cwd}")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("users.jsonl")).unwrap(),
        before
    );
    assert_eq!(dir_names(&out), ["users.jsonl"]);
}

#[test]
fn a_csv_file_reaches_jsonl_with_every_value_and_change_kept() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("in")).unwrap();
    // `n` is an integer for the 1000 rows inference reads, then is not:
    // that value is sent as null and says so in the record's meta.
    let mut csv = "zip,id,n,price,id\n".to_string();
    for i in 0..1000 {
        csv.push_str(&format!("00{i},{i},{i},1.50,x{i}\n"));
    }
    csv.push_str("02134,123456789012345678901234,oops,2.00,y\n");
    sandbox.write("in/t.csv", &csv);
    let source = format!(r#"{{"path": "{}"}}"#, sandbox.path("in/t.csv").display());
    let out = sandbox.path("out");
    let summary = sandbox.sync(("file", &source), ("jsonl", &dest(&out)), &[]);
    assert_eq!(summary["records"], 1001, "{summary}");
    let text = std::fs::read_to_string(out.join("t.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1001);
    // Leading zeros, a number's own digits, and both `id` columns.
    assert!(
        lines[7].starts_with(r#"{"zip":"007","id":7,"n":7,"price":1.50,"id_2":"x7","#),
        "{}",
        lines[7]
    );
    let last: serde_json::Value = serde_json::from_str(lines[1000]).unwrap();
    assert_eq!(last["zip"], "02134");
    assert!(
        lines[1000].contains(r#""id":123456789012345678901234,"#),
        "{}",
        lines[1000]
    );
    assert_eq!(last["n"], serde_json::Value::Null);
    assert_eq!(
        last["_airbyte_meta"]["changes"],
        serde_json::json!([{"field": "n", "change": "NULLED", "reason": "SOURCE_SERIALIZATION_ERROR"}])
    );
    assert!(lines[0..1000].iter().all(|l| !l.contains("_airbyte_meta")));
}

/// With a configured catalog, options the catalog already answers are
/// refused rather than ignored, and a field selection is checked against
/// the catalog's cursor.
#[test]
fn a_configured_catalog_refuses_mode_options_and_checks_its_fields() {
    let sandbox = Sandbox::new();
    let catalog = configured_catalog(&sandbox, ("sample", r#"{"count": 3}"#), "overwrite");
    let catalog = catalog.to_str().unwrap();
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "-o",
            "json",
            "sync",
            "--source",
            "sample",
            "--source-config",
            r#"{"count": 3}"#,
            "--destination",
            "devnull",
            "--catalog",
            catalog,
        ];
        args.extend(extra);
        sandbox.run(&args)
    };
    for extra in [
        &["--sync-mode", "incremental"][..],
        &["--stream-destination-sync-mode", "users=append"],
        &["--cursor", "users=id"],
    ] {
        let run = sync(extra);
        run.expect_code(2);
        let message = run.json()["error"]["message"].to_string();
        assert!(
            message.contains("a configured catalog sets each stream's modes"),
            "{extra:?}: {message}"
        );
    }
    let run = sync(&["--fields", "users=nope"]);
    run.expect_code(2);
    assert!(
        run.json()["error"]["message"]
            .to_string()
            .contains("has no field `nope` to select"),
        "{}",
        run.stdout()
    );
    let run = sync(&["--fields", "users=id,name"]);
    run.expect_code(0);
    assert_eq!(run.json()["records"], 3);
}
