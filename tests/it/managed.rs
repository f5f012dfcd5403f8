//! Managed sources, destinations, connections, jobs and state, through the
//! binary, on both job stores: `sqlite::NAME` uses the SQLite file in the
//! sandbox's data dir, `postgres::NAME` a database of its own on the test
//! server (skipped outside CI when it is missing, failed under CI).

use crate::common::{read_jsonl, require, send_signal, PgDatabase, Run, Sandbox};
use serde_json::{json, Value};
use std::process::Command;

/// A sandbox and the store its commands use.
struct Env {
    sandbox: Sandbox,
    db: Option<PgDatabase>,
}

impl Env {
    fn sqlite() -> Env {
        Env {
            sandbox: Sandbox::new(),
            db: None,
        }
    }

    fn postgres() -> Option<Env> {
        Some(Env {
            sandbox: Sandbox::new(),
            db: Some(PgDatabase::create()?),
        })
    }

    fn cmd(&self) -> Command {
        let mut cmd = self.sandbox.cmd();
        match &self.db {
            Some(db) => cmd.env("SLUICE_DATABASE_URL", &db.url),
            None => cmd.env_remove("SLUICE_DATABASE_URL"),
        };
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd().args(args).output().expect("run sluice"))
    }

    /// `sluice -o json ARGS`, which must exit 0; its JSON.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-o", "json"];
        all.extend(args);
        let run = self.run(&all);
        run.expect_code(0);
        run.json()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.expect_code(0);
        run
    }
}

/// `sqlite::NAME` and `postgres::NAME` running `NAME(&Env)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Env::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                let Some(env) = super::Env::postgres() else { return };
                super::$name(&env);
            } )*
        }
    };
}

both_backends!(
    db_status_names_the_backend,
    sources_destinations_and_connections_round_trip,
    secrets_are_never_printed,
    connection_sync_twice_with_faker_resumes_from_stored_state,
    a_crashed_attempt_is_retried_from_its_committed_state,
    attempts_without_progress_give_up,
    reset_clears_state_and_data,
    refresh_starts_a_new_generation,
    schema_changes_are_followed_or_fail_the_job,
    schema_change_policies_propagate_fully_and_disable,
    ctrl_c_cancels_the_job_and_keeps_the_committed_state,
    one_job_at_a_time_and_orphans_are_ended,
    state_set_is_validated,
    apply_and_export_round_trip,
    two_processes_write_one_store_at_once,
);

const SECRET: &str = "hunter2-very-secret";
const SPEC: &str = r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"token":{"type":"string","airbyte_secret":true},"n":{"type":"integer"}}}}}"#;

fn record(x: u32) -> String {
    format!(
        r#"{{"type":"RECORD","record":{{"stream":"s","data":{{"x":{x},"at":{x}}},"emitted_at":1}}}}"#
    )
}

fn state(c: u32) -> String {
    format!(
        r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"s"}},"stream_state":{{"c":{c}}}}}}}}}"#
    )
}

/// A protocol source as a script: `discover` prints the file `catalog.json`
/// of the sandbox (so tests can change it), `read` runs `read`; the state
/// it was given is copied to `seen-state-N.json`, N counting reads.
fn script_source(sandbox: &Sandbox, read: &str) -> String {
    sandbox.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]}]}}"#,
    );
    let dir = sandbox.dir.path().display();
    sandbox.script(
        "source",
        &format!(
            r#"cd {dir}
case "$1" in
  spec) echo '{SPEC}' ;;
  check) echo '{{"type":"CONNECTION_STATUS","connectionStatus":{{"status":"SUCCEEDED"}}}}' ;;
  discover) cat catalog.json ;;
  read)
    n=$(ls seen-state-* 2>/dev/null | wc -l)
    state=
    while [ $# -gt 0 ]; do [ "$1" = --state ] && state=$2; shift; done
    if [ -n "$state" ]; then cp "$state" seen-state-$n.json; else echo null > seen-state-$n.json; fi
{read}
  ;;
esac"#
        ),
    )
}

fn echo_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("    echo '{l}'"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A source, a jsonl destination into `out/`, and an incremental
/// connection `c` between them.
fn setup_connection(env: &Env, source_ref: &str) {
    let s = &env.sandbox;
    let config = format!(r#"{{"token": "{SECRET}", "n": 1}}"#);
    env.ok(&[
        "source",
        "create",
        "src",
        "--connector",
        source_ref,
        "--config",
        &config,
    ]);
    let out = format!(r#"{{"path": "{}"}}"#, s.path("out").display());
    env.ok(&[
        "destination",
        "create",
        "dst",
        "--connector",
        "jsonl",
        "--config",
        &out,
    ]);
    env.ok(&[
        "connection",
        "create",
        "c",
        "--source",
        "src",
        "--destination",
        "dst",
        "--sync-mode",
        "incremental",
    ]);
}

fn db_status_names_the_backend(env: &Env) {
    let status = env.json(&["db", "status"]);
    assert_eq!(status["applied"][0]["version"], 1, "{status}");
    match &env.db {
        None => {
            assert_eq!(status["backend"], "sqlite");
            let db = env.sandbox.data_dir().join("sluice.db");
            assert_eq!(status["url"], format!("sqlite://{}", db.display()));
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&db), 0o600);
            assert_eq!(mode(&env.sandbox.data_dir()), 0o700);
        }
        Some(db) => {
            assert_eq!(status["backend"], "postgres");
            let url = status["url"].as_str().unwrap();
            assert!(url.contains(":****@"), "{url}");
            assert!(url.ends_with(&db.name), "{url}");
            assert!(!url.contains(":sluice@"), "the password is masked: {url}");
        }
    }
    // --database-url wins over SLUICE_DATABASE_URL.
    let other = env.sandbox.path("other.db");
    let url = format!("sqlite://{}", other.display());
    let status = env.json(&["--database-url", &url, "db", "status"]);
    assert_eq!(status["url"], url);
    assert!(other.exists());
    // An unreachable server: said with the password masked, and what to do.
    let down = env.run(&[
        "--database-url",
        "postgres://u:pw-XYZ@127.0.0.1:1/x",
        "db",
        "status",
    ]);
    down.expect_code(1);
    let err = down.stderr();
    assert!(
        err.contains("cannot open the job store at postgres://u:****@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(err.contains("hint: check the database is running"), "{err}");
    assert!(!err.contains("pw-XYZ"), "{err}");
    let migrated = env.run(&["db", "migrate"]);
    migrated.expect_code(0);
    assert!(migrated.stderr().contains("The job store is up to date."));
}

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

fn a_crashed_attempt_is_retried_from_its_committed_state(env: &Env) {
    let s = &env.sandbox;
    // First read: two records and a state after the first, then a crash.
    // Later reads: what comes after the state they were given.
    let read = format!(
        r#"    if [ ! -f crashed ]; then
      touch crashed
{}
      echo 'the source fell over' >&2
      exit 3
    fi
{}"#,
        echo_lines(&[record(1), state(1), record(2)]),
        echo_lines(&[record(2), state(2)])
    );
    let src = script_source(s, &read);
    setup_connection(env, &src);
    let job = env.run(&[
        "-o",
        "json",
        "connection",
        "sync",
        "c",
        "--retry-backoff",
        "0s",
    ]);
    job.expect_code(0);
    let job = job.json();
    assert_eq!(job["status"], "succeeded", "{job}");
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["records_committed"], 1, "{job}");
    assert_eq!(attempts[0]["failure"]["origin"], "source", "{job}");
    assert_eq!(
        attempts[0]["failure"]["failure_type"], "system_error",
        "{job}"
    );
    let why = attempts[0]["failure"]["message"].as_str().unwrap();
    assert!(why.contains("the source fell over"), "{why}");
    assert_eq!(attempts[1]["status"], "succeeded");
    // The first read had no state; the second got the first's committed one.
    let seen = |n: u32| -> Value {
        serde_json::from_slice(&std::fs::read(s.path(&format!("seen-state-{n}.json"))).unwrap())
            .unwrap()
    };
    assert_eq!(seen(0), Value::Null);
    assert_eq!(seen(1)[0]["stream"]["stream_state"], json!({"c": 1}));
    assert_eq!(
        env.json(&["state", "get", "c"])["state"][0]["stream"]["stream_state"],
        json!({"c": 2})
    );
    let rows: Vec<i64> = read_jsonl(&s.path("out/s.jsonl"))
        .iter()
        .map(|r| r["x"].as_i64().unwrap())
        .collect();
    assert!(rows.starts_with(&[1]) && rows.ends_with(&[2]), "{rows:?}");
    // Each attempt has its log.
    let id = job["id"].to_string();
    let log1 = env.ok(&["job", "logs", &id, "--attempt", "1"]).stdout();
    assert!(log1.contains("the source fell over"), "{log1}");
    let log2 = env.ok(&["job", "logs", &id]).stdout();
    assert!(log2.contains("attempt 2."), "{log2}");
    assert!(attempts[1]["log_path"]
        .as_str()
        .unwrap()
        .ends_with(&format!("jobs/{id}/attempt-2.log")));
}

fn attempts_without_progress_give_up(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, "    echo 'nothing works' >&2\n    exit 1");
    setup_connection(env, &src);
    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "sync",
        "c",
        "--retry-backoff",
        "0s",
        "--max-failed-attempts",
        "3",
    ]);
    run.expect_code(1);
    let job = run.json();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"].as_array().unwrap().len(), 3, "{job}");
    for a in job["attempts"].as_array().unwrap() {
        assert_eq!(a["status"], "failed");
        assert_eq!(a["records_committed"], 0);
    }
    // In human form: the reason, and where to look.
    let run = env.run(&[
        "connection",
        "sync",
        "c",
        "--retry-backoff",
        "0s",
        "--max-failed-attempts",
        "1",
    ]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.contains("failed after 1 attempt(s)"), "{err}");
    assert!(err.contains("nothing works"), "{err}");
    assert!(err.contains("sluice job logs"), "{err}");
    assert_eq!(
        env.json(&["job", "list", "--status", "failed"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
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

fn schema_changes_are_followed_or_fail_the_job(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    // A new column: propagated (the default policy), and shown.
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"},"y":{"type":"string"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]},{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
    );
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["changes"],
        json!([
            {"stream": "s", "change": "column `y` added", "breaking": false},
            {"stream": "t", "change": "new stream", "breaking": false}
        ])
    );
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(
        c["catalog"]["streams"][0]["stream"]["json_schema"]["properties"]["y"]["type"],
        "string"
    );
    assert_eq!(
        c["catalog_streams"].as_array().unwrap().len(),
        1,
        "new streams wait for propagate_fully"
    );
    let text = env.ok(&["job", "get", &job["id"].to_string()]).stdout();
    assert!(text.contains("column `y` added"), "{text}");

    // The selected stream gone: the job fails, naming it.
    s.write(
        "catalog.json",
        r#"{"type":"CATALOG","catalog":{"streams":[{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
    );
    let run = env.run(&["-o", "json", "connection", "sync", "c"]);
    run.expect_code(1);
    let job = run.json();
    assert_eq!(job["status"], "failed");
    let why = job["attempts"][0]["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("stream `s`: the stream is gone"), "{why}");
    assert_eq!(
        job["attempts"][0]["failure"]["failure_type"],
        "config_error"
    );
    assert_eq!(job["changes"][0]["breaking"], true);
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

fn apply_and_export_round_trip(env: &Env) {
    let s = &env.sandbox;
    let yaml = format!(
        r#"sources:
  gen:
    connector: sample
    config:
      count: 3
  scripted:
    connector: {src}
    config:
      token: ${{SLUICE_TEST_TOKEN}}
      n: 1
destinations:
  local:
    connector: jsonl
    config:
      path: {out}
connections:
  gen-to-local:
    source: gen
    destination: local
    streams: [users]
    sync_mode: incremental
    schedule: every:1h
    prefix: raw_
"#,
        src = script_source(s, &echo_lines(&[record(1), state(1)])),
        out = s.path("out").display()
    );
    let file = s.write("sluice.yaml", &yaml);
    let file = file.to_str().unwrap();
    let apply = |args: &[&str]| {
        let mut cmd = env.cmd();
        cmd.env("SLUICE_TEST_TOKEN", SECRET).args(args);
        Run(cmd.output().unwrap())
    };
    // Without the variable: refused, naming it.
    let missing = env.run(&["apply", "-f", file]);
    missing.expect_code(2);
    assert!(
        missing
            .stderr()
            .contains("uses ${SLUICE_TEST_TOKEN}, which is not set"),
        "{}",
        missing.stderr()
    );
    let dry = apply(&["-o", "json", "apply", "-f", file, "--dry-run"]);
    dry.expect_code(0);
    let dry = dry.json();
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["changes"].as_array().unwrap().len(), 4);
    assert!(dry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["action"] == "create"));
    assert_eq!(
        env.json(&["source", "list"]),
        json!([]),
        "a dry run changes nothing"
    );
    let done = apply(&["apply", "-f", file]);
    done.expect_code(0);
    assert!(
        done.stdout().contains("create"),
        "the plan is printed: {}",
        done.stdout()
    );
    assert_eq!(
        env.json(&["source", "get", "scripted", "--show-secrets"])["config"]["token"],
        SECRET
    );
    let again = apply(&["-o", "json", "apply", "-f", file]);
    again.expect_code(0);
    assert!(
        again.json()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "unchanged"),
        "{}",
        again.stdout()
    );

    let first = env.ok(&["export"]).stdout();
    assert!(!first.contains(SECRET), "{first}");
    assert!(first.contains("**********"), "{first}");
    assert!(first.contains("gen-to-local"), "{first}");
    let exported = s.write("exported.yaml", &first);
    // Delete everything, apply the export, export again: the same YAML.
    env.ok(&["connection", "delete", "gen-to-local"]);
    for (kind, name) in [
        ("source", "gen"),
        ("source", "scripted"),
        ("destination", "local"),
    ] {
        env.ok(&[kind, "delete", name]);
    }
    let reapplied = env.ok(&["apply", "-f", exported.to_str().unwrap()]);
    assert!(
        reapplied
            .stderr()
            .contains("warning: source `scripted` has no stored value for /token"),
        "{}",
        reapplied.stderr()
    );
    let second = env.ok(&["export"]).stdout();
    assert_eq!(first, second);

    // --prune deletes what the file no longer names.
    let only = s.write(
        "only.yaml",
        "sources:\n  gen:\n    connector: sample\n    config:\n      count: 3\n",
    );
    let pruned = env.json(&["apply", "-f", only.to_str().unwrap(), "--prune"]);
    let deletes: Vec<String> = pruned["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        deletes,
        [
            "source scripted",
            "destination local",
            "connection gen-to-local"
        ]
    );
    assert_eq!(env.json(&["connection", "list"]), json!([]));
    assert_eq!(env.json(&["source", "list"]).as_array().unwrap().len(), 1);
}

fn two_processes_write_one_store_at_once(env: &Env) {
    // Both processes open (and, for a new store, migrate) it at once.
    let spawn = |prefix: &str| {
        let mut children = Vec::new();
        for i in 0..6 {
            let name = format!("{prefix}-{i}");
            children.push(
                env.cmd()
                    .args([
                        "source",
                        "create",
                        &name,
                        "--connector",
                        "sample",
                        "--no-check",
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        children
    };
    let mut all = spawn("a");
    all.extend(spawn("b"));
    for child in all {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = env.json(&["source", "list"]);
    assert_eq!(names.as_array().unwrap().len(), 12, "{names}");
}

const GROWN: &str = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object","properties":{"x":{"type":"integer"},"at":{"type":"integer"}}},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,"default_cursor_field":["at"]},{"name":"t","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true}]}}"#;

fn schema_change_policies_propagate_fully_and_disable(env: &Env) {
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1)]));
    setup_connection(env, &src);
    env.ok(&[
        "connection",
        "update",
        "c",
        "--streams",
        "s",
        "--schema-change",
        "propagate-fully",
    ]);
    s.write("catalog.json", GROWN);
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["changes"],
        json!([{"stream": "t", "change": "new stream", "breaking": false}])
    );
    let c = env.json(&["connection", "get", "c"]);
    let names: Vec<&str> = c["catalog_streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s", "t"], "the new stream was added");
    assert_eq!(c["streams"], json!(["s", "t"]));
    assert_eq!(c["catalog_streams"][1]["sync_mode"], "incremental");

    // A new stream that cannot be synced incrementally is left out, said so.
    s.write(
        "catalog.json",
        &GROWN.replace(
            r#"]}}"#,
            r#",{"name":"u","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#,
        ),
    );
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    let note = job["changes"][0]["change"].as_str().unwrap();
    assert!(
        note.starts_with("new stream, not added: stream `u` does not support incremental"),
        "{note}"
    );
    assert_eq!(
        env.json(&["connection", "get", "c"])["catalog_streams"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // `disable`: any change turns the connection off and fails the job.
    env.ok(&["connection", "update", "c", "--schema-change", "disable"]);
    s.write(
        "catalog.json",
        &GROWN.replace(
            r#""at":{"type":"integer"}}"#,
            r#""at":{"type":"integer"},"z":{}}"#,
        ),
    );
    let run = env.run(&["-o", "json", "connection", "sync", "c"]);
    run.expect_code(1);
    let job = run.json();
    let why = job["attempts"][0]["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("disables itself on changes"), "{why}");
    assert_eq!(job["changes"][0]["change"], "column `z` added");
    assert_eq!(env.json(&["connection", "get", "c"])["status"], "inactive");

    // `ignore`: the catalog stays as it was.
    env.ok(&["connection", "enable", "c"]);
    env.ok(&["connection", "update", "c", "--schema-change", "ignore"]);
    let job = env.json(&["connection", "sync", "c"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    let c = env.json(&["connection", "get", "c"]);
    assert_eq!(
        c["catalog"]["streams"][0]["stream"]["json_schema"]["properties"].get("z"),
        None
    );
}

fn ctrl_c_cancels_the_job_and_keeps_the_committed_state(env: &Env) {
    let s = &env.sandbox;
    let read = format!(
        "{}
    touch started
    sleep 30",
        echo_lines(&[record(1), state(1)])
    );
    let src = script_source(s, &read);
    setup_connection(env, &src);
    let child = env
        .cmd()
        .args(["-o", "json", "connection", "sync", "c"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !s.path("started").exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the source never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Let the destination confirm the first state, then Ctrl-C.
    std::thread::sleep(std::time::Duration::from_millis(500));
    send_signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(
        job["attempts"].as_array().unwrap().len(),
        1,
        "a cancelled attempt is not retried"
    );
    assert_eq!(
        job["attempts"][0]["failure"]["failure_type"],
        "manual_cancellation"
    );
    assert_eq!(
        env.json(&["state", "get", "c"])["state"][0]["stream"]["stream_state"],
        json!({"c": 1})
    );
    assert_eq!(
        env.json(&["job", "list", "--status", "cancelled"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn one_job_at_a_time_and_orphans_are_ended(env: &Env) {
    let s = &env.sandbox;
    let read = format!(
        "{}\n    if [ ! -f started ]; then echo $$ > source.pid; touch started; exec sleep 30; fi",
        echo_lines(&[record(1), state(1)])
    );
    let src = script_source(s, &read);
    setup_connection(env, &src);
    let mut first = env
        .cmd()
        .args(["connection", "sync", "c"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !s.path("started").exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the source never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = env.run(&["connection", "sync", "c"]);
    second.expect_code(2);
    assert!(
        second
            .stderr()
            .contains("connection `c` already has a running job (sync, job 1)"),
        "{}",
        second.stderr()
    );
    // Killed hard: the job row stays `running` until the next job finds
    // its process gone.
    first.kill().unwrap();
    first.wait().unwrap();
    let pid = std::fs::read_to_string(s.path("source.pid")).unwrap();
    let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    assert_eq!(env.json(&["job", "get", "1"])["status"], "running");
    let third = env.json(&["connection", "sync", "c"]);
    assert_eq!(third["status"], "succeeded", "{third}");
    let orphan = env.json(&["job", "get", "1"]);
    assert_eq!(orphan["status"], "failed");
    let why = orphan["attempts"][0]["failure"]["message"]
        .as_str()
        .unwrap();
    assert!(why.contains("is gone"), "{why}");
}

/// The tables people read (SQLite only: the store does not change them).
#[test]
fn tables_for_people() {
    let env = Env::sqlite();
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1), record(2), state(2)]));
    setup_connection(&env, &src);
    env.ok(&["connection", "sync", "c"]);
    let sandbox = regex_escape(&s.dir.path().display().to_string());
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&sandbox, "[SANDBOX]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r"\b\d+(\.\d)? (ms|s)\b", "[DURATION]");
    // Column widths follow the filtered values: compare cells, not padding.
    settings.add_filter(r" {2,}", "  ");
    settings.add_filter(r"[-=]{3,}", "---");
    settings.bind(|| {
        insta::assert_snapshot!("source_list", env.ok(&["source", "list"]).stdout());
        insta::assert_snapshot!("connection_list", env.ok(&["connection", "list"]).stdout());
        insta::assert_snapshot!("job_get", env.ok(&["job", "get", "1"]).stdout());
    });
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
