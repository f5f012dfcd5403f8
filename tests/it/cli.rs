//! What a user reads when something goes wrong: the exit code, stdout and
//! stderr of the main error paths, together, as snapshots reviewed as text
//! (the sandbox's paths, times and durations filtered out).

use crate::common::{Run, Sandbox};

/// `sluice ARGS` in `sandbox`, as one text: the exit code, then stdout and
/// stderr, with what changes between runs filtered out.
fn transcript(sandbox: &Sandbox, args: &[&str]) -> String {
    let run: Run = sandbox.run(args);
    format!(
        "$ sluice {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        run.code(),
        run.stdout(),
        run.stderr()
    )
}

macro_rules! cli_snapshot {
    ($sandbox:expr, $name:literal, $args:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(
            &regex_escape(&$sandbox.dir.path().display().to_string()),
            "[SANDBOX]",
        );
        settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:?\d\d:?\d\d(\.\d+)?Z", "[TIME]");
        settings.add_filter(r"\b\d+(\.\d)? (ms|s)\b", "[DURATION]");
        settings.add_filter(r"-\d+\.log\b", "-[PID].log");
        settings.bind(|| insta::assert_snapshot!($name, transcript(&$sandbox, $args)));
    }};
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn bad_references_configs_and_files() {
    let s = Sandbox::new();
    cli_snapshot!(
        s,
        "unknown_builtin",
        &["sync", "--source", "nope", "--destination", "devnull"]
    );
    cli_snapshot!(s, "unknown_kind", &["connector", "spec", "ftp:somewhere"]);
    cli_snapshot!(
        s,
        "config_not_json",
        &[
            "sync",
            "--source",
            "sample",
            "--source-config",
            "{count: 1}",
            "--destination",
            "devnull"
        ]
    );
    cli_snapshot!(
        s,
        "config_file_missing",
        &[
            "sync",
            "--source",
            "sample",
            "--source-config",
            "no-such.json",
            "--destination",
            "devnull"
        ]
    );
    cli_snapshot!(
        s,
        "config_against_spec",
        &[
            "sync",
            "--source",
            "sample",
            "--source-config",
            r#"{"count": "many"}"#,
            "--destination",
            "devnull"
        ]
    );
    cli_snapshot!(
        s,
        "unknown_stream",
        &[
            "sync",
            "--source",
            "sample",
            "--streams",
            "nope",
            "--destination",
            "devnull"
        ]
    );
    cli_snapshot!(
        s,
        "bad_runtime_option",
        &["connector", "spec", "sample", "--memory", "lots"]
    );
    cli_snapshot!(
        s,
        "role_mismatch",
        &["sync", "--source", "sample", "--destination", "sample"]
    );
    cli_snapshot!(
        s,
        "source_that_is_a_destination",
        &["source", "create", "out", "--connector", "jsonl"]
    );
    cli_snapshot!(
        s,
        "destination_that_cannot_be_written",
        &[
            "sync",
            "--source",
            "sample",
            "--destination",
            "jsonl",
            "--destination-config",
            r#"{"path": "/proc/sluice-cannot-write-here"}"#
        ]
    );
    cli_snapshot!(
        s,
        "no_streams_named",
        &[
            "sync",
            "--source",
            "sample",
            "--streams",
            "",
            "--destination",
            "devnull"
        ]
    );
    cli_snapshot!(
        s,
        "incremental_cannot_overwrite",
        &[
            "sync",
            "--source",
            "sample",
            "--destination",
            "devnull",
            "--sync-mode",
            "incremental",
            "--destination-sync-mode",
            "overwrite"
        ]
    );
    cli_snapshot!(
        s,
        "state_file_cannot_be_written",
        &[
            "sync",
            "--source",
            "sample",
            "--destination",
            "devnull",
            "--sync-mode",
            "incremental",
            "--state",
            "/proc/no-such-dir/state.json"
        ]
    );
    s.write(
        "typo-state.json",
        r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "usrs"}, "stream_state": {"updated_at": "2024-01-01T00:00:00Z"}}}]"#,
    );
    cli_snapshot!(
        s,
        "state_names_an_unknown_stream",
        &[
            "sync",
            "--source",
            "sample",
            "--destination",
            "devnull",
            "--sync-mode",
            "incremental",
            "--state",
            "typo-state.json"
        ]
    );
    cli_snapshot!(
        s,
        "usage_error_as_json",
        &["-o", "json", "sync", "--source", "sample"]
    );
    cli_snapshot!(
        s,
        "error_as_json",
        &["-o", "json", "connector", "spec", "ftp:somewhere"]
    );
}

#[test]
fn a_failed_sync_says_why_and_where_the_log_is() {
    let s = Sandbox::new();
    let source = s.script(
        "fails.sh",
        r#"case "$1" in
spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}' ;;
discover) echo '{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{},"supported_sync_modes":["full_refresh"]}]}}' ;;
read) echo 'the database is on fire' >&2; exit 3 ;;
esac"#,
    );
    cli_snapshot!(
        s,
        "sync_failed",
        &["sync", "--source", &source, "--destination", "devnull"]
    );
}

#[test]
fn names_that_name_nothing() {
    let s = Sandbox::new();
    cli_snapshot!(s, "source_not_found", &["source", "get", "nope"]);
    cli_snapshot!(
        s,
        "connection_with_unknown_source",
        &[
            "connection",
            "create",
            "c",
            "--source",
            "nope",
            "--destination",
            "d"
        ]
    );
    cli_snapshot!(s, "job_not_found", &["job", "logs", "42"]);
    cli_snapshot!(
        s,
        "bad_schedule",
        &[
            "connection",
            "create",
            "c",
            "--source",
            "a",
            "--destination",
            "b",
            "--schedule",
            "hourly"
        ]
    );
    // Named by field and range, not in croner's words.
    cli_snapshot!(
        s,
        "cron_out_of_range",
        &[
            "connection",
            "create",
            "c",
            "--source",
            "a",
            "--destination",
            "b",
            "--schedule",
            "cron:0 25 * * *"
        ]
    );
}

#[test]
fn a_schedule_runs_in_one_time_zone() {
    let s = Sandbox::new();
    let create = |schedule: &'static str, zone: Option<&'static str>| {
        let mut args = vec![
            "connection",
            "create",
            "c",
            "--source",
            "a",
            "--destination",
            "b",
            "--schedule",
            schedule,
        ];
        if let Some(zone) = zone {
            args.extend(["--timezone", zone]);
        }
        args
    };
    cli_snapshot!(
        s,
        "two_time_zones",
        &create("cron:CRON_TZ=Asia/Tokyo 0 * * * *", Some("Europe/Paris"))
    );
}

#[test]
fn a_connection_must_use_modes_its_destination_supports() {
    let s = Sandbox::new();
    s.run(&["source", "create", "gen", "--connector", "sample"])
        .expect_code(0);
    s.run(&[
        "destination",
        "create",
        "files",
        "--connector",
        "jsonl",
        "--config",
        r#"{"path": "out"}"#,
    ])
    .expect_code(0);
    cli_snapshot!(
        s,
        "connection_with_unsupported_mode",
        &[
            "connection",
            "create",
            "c",
            "--source",
            "gen",
            "--destination",
            "files",
            "--sync-mode",
            "incremental",
            "--destination-sync-mode",
            "append_dedup"
        ]
    );
}

#[test]
fn an_inactive_connection_refuses_to_sync() {
    let s = Sandbox::new();
    s.run(&["source", "create", "gen", "--connector", "sample"])
        .expect_code(0);
    s.run(&["destination", "create", "nul", "--connector", "devnull"])
        .expect_code(0);
    s.run(&[
        "connection",
        "create",
        "c",
        "--source",
        "gen",
        "--destination",
        "nul",
    ])
    .expect_code(0);
    s.run(&["connection", "disable", "c"]).expect_code(0);
    cli_snapshot!(s, "inactive_connection", &["connection", "sync", "c"]);
}

/// What bash gets when it asks `sluice` to complete the word at `index`
/// of `words` (as the script `sluice completions bash` registers does).
fn complete(sandbox: &Sandbox, index: usize, words: &[&str]) -> Vec<String> {
    let out = sandbox
        .cmd()
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", index.to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .arg("--")
        .args(words)
        .output()
        .expect("run sluice");
    String::from_utf8_lossy(&out.stdout)
        .split(['\u{b}', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn completion_offers_connectors_and_stored_names() {
    let s = Sandbox::new();
    // No store yet: nothing to offer, and none is created by asking.
    assert!(complete(&s, 3, &["sluice", "connection", "sync", ""])
        .iter()
        .all(|w| w.starts_with('-')));
    assert!(!s.data_dir().join("sluice.db").exists());
    let refs = complete(&s, 3, &["sluice", "sync", "--source", ""]);
    for want in ["sample", "file", "postgres", "python:", "docker:", "exec:"] {
        assert!(refs.iter().any(|r| r == want), "{want} in {refs:?}");
    }
    s.run(&["source", "create", "gen", "--connector", "sample"])
        .expect_code(0);
    s.run(&["destination", "create", "nul", "--connector", "devnull"])
        .expect_code(0);
    s.run(&[
        "connection",
        "create",
        "gen-to-nul",
        "--source",
        "gen",
        "--destination",
        "nul",
    ])
    .expect_code(0);
    assert_eq!(
        complete(&s, 3, &["sluice", "connection", "sync", "g"]),
        ["gen-to-nul"]
    );
    assert!(complete(&s, 3, &["sluice", "source", "get", ""]).contains(&"gen".into()));
    assert!(complete(&s, 3, &["sluice", "destination", "check", ""]).contains(&"nul".into()));
    assert!(!complete(&s, 3, &["sluice", "destination", "check", ""]).contains(&"gen".into()));
    assert_eq!(
        complete(&s, 3, &["sluice", "sync", "--sync-mode", ""]),
        ["full_refresh", "incremental"]
    );
}
