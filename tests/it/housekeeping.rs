//! The daemon's housekeeping and what happens when a job ends: webhooks
//! called with the job's details, connections disabled after failing too
//! often, old jobs and their logs deleted; on SQLite and PostgreSQL.

use crate::common::{PgDatabase, Sandbox};
use crate::daemon::{wait_for_job, Daemon};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver: records each request's JSON body, answers 200.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/T0/s3cret", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        seen.lock().unwrap().push(v);
                    }
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { url, bodies }
    }

    fn events(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `n` bodies came.
    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.events();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A source that fails (a TRACE ERROR) when its marker file exists, else
/// sends one record.
fn flaky_source(sandbox: &Sandbox) -> String {
    let spec = r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}"#;
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#;
    let check = r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#;
    let error = r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"the API said no","failure_type":"config_error"}}}"#;
    let record = r#"{"type":"RECORD","record":{"stream":"s","data":{"x":1},"emitted_at":1}}"#;
    let marker = sandbox.path("failing");
    sandbox.script(
        "flaky",
        &format!(
            "case \"$1\" in\n  spec) echo '{spec}' ;;\n  check) echo '{check}' ;;\n  discover) echo '{catalog}' ;;\n  read)\n    if [ -e {m} ]; then echo '{error}'; exit 1; fi\n    echo '{record}' ;;\nesac",
            m = marker.display()
        ),
    )
}

fn setup(sandbox: &Sandbox, env: &[(&str, &str)], hooks: &[&str]) {
    let source = flaky_source(sandbox);
    let mut create = vec![
        "connection",
        "create",
        "c",
        "--source",
        "flaky",
        "--destination",
        "nowhere",
    ];
    create.extend_from_slice(hooks);
    for args in [
        vec![
            "source",
            "create",
            "flaky",
            "--connector",
            &source,
            "--no-check",
        ],
        vec!["destination", "create", "nowhere", "--connector", "devnull"],
        create,
    ] {
        run(sandbox, env, &args).expect_code(0);
    }
}

fn run(sandbox: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> crate::common::Run {
    let mut cmd = sandbox.cmd();
    cmd.envs(env.iter().copied()).args(args);
    crate::common::Run(cmd.output().expect("run sluice"))
}

fn sync(sandbox: &Sandbox, env: &[(&str, &str)]) -> crate::common::Run {
    run(
        sandbox,
        env,
        &["connection", "sync", "c", "--max-attempts", "1"],
    )
}

fn notifications_and_auto_disable(env: &[(&str, &str)]) {
    let sandbox = Sandbox::new();
    let failures = Receiver::start();
    let successes = Receiver::start();
    let disables = Receiver::start();
    setup(
        &sandbox,
        env,
        &[
            "--notify-failure",
            &failures.url,
            "--notify-success",
            &successes.url,
            "--notify-disable",
            &disables.url,
        ],
    );
    // The URLs hold a token: shown masked, kept as they are.
    let got = run(&sandbox, env, &["-o", "json", "connection", "get", "c"]);
    let port = failures.url.split('/').nth(2).unwrap();
    assert_eq!(
        got.json()["notifications"]["on_failure"],
        serde_json::json!([format!("http://{port}/**********")])
    );
    let exported = run(&sandbox, env, &["export"]);
    assert!(
        !exported.stdout().contains("s3cret"),
        "{}",
        exported.stdout()
    );
    // Updating something else keeps them.
    run(
        &sandbox,
        env,
        &["connection", "update", "c", "--prefix", "p_"],
    )
    .expect_code(0);

    sync(&sandbox, env).expect_code(0);
    let ok = successes.wait_for(1);
    assert_eq!(ok.len(), 1, "{ok:?}");
    let data = &ok[0]["data"];
    assert_eq!(data["event"], "success");
    assert_eq!(data["connection"], "c");
    assert_eq!(data["source"], "flaky");
    assert_eq!(data["destination"], "nowhere");
    assert_eq!(data["success"], true);
    assert_eq!(data["records_emitted"], 1);
    assert_eq!(data["records_committed"], 1);
    assert!(ok[0]["text"].as_str().unwrap().contains("succeeded"));

    std::fs::write(sandbox.path("failing"), "").unwrap();
    // SLUICE_AUTO_DISABLE_AFTER=3: warned at 2, disabled at 3.
    for n in 1..=3 {
        // A config error in the source: exit 2.
        sync(&sandbox, env).expect_code(2);
        let failed = failures.wait_for(n);
        assert_eq!(failed.len(), n, "{failed:?}");
    }
    let failed = failures.events();
    let data = &failed[0]["data"];
    assert_eq!(data["event"], "failure");
    assert_eq!(data["success"], false);
    assert_eq!(data["connection"], "c");
    assert!(data["job"].as_i64().unwrap() > 1);
    assert!(data["started_at"].as_i64().unwrap() <= data["finished_at"].as_i64().unwrap());
    assert_eq!(data["error"]["message"], "the API said no");
    assert_eq!(data["error"]["origin"], "source");
    assert_eq!(data["failures_in_a_row"], 1);
    assert!(failed[0]["text"]
        .as_str()
        .unwrap()
        .contains("the API said no"));
    let warned = disables.wait_for(2);
    let events: Vec<&Value> = warned.iter().map(|w| &w["data"]["event"]).collect();
    assert_eq!(events, ["disable_warning", "disable"], "{warned:?}");
    let got = run(&sandbox, env, &["-o", "json", "connection", "get", "c"]);
    assert_eq!(got.json()["status"], "inactive");
    assert_eq!(successes.events().len(), 1);

    // `--no-notify` removes them.
    run(&sandbox, env, &["connection", "update", "c", "--no-notify"]).expect_code(0);
    let got = run(&sandbox, env, &["-o", "json", "connection", "get", "c"]);
    assert!(
        got.json().get("notifications").is_none(),
        "{}",
        got.stdout()
    );
}

const AUTO_DISABLE: (&str, &str) = ("SLUICE_AUTO_DISABLE_AFTER", "3");

#[test]
fn webhooks_are_called_and_a_failing_connection_is_disabled_sqlite() {
    notifications_and_auto_disable(&[AUTO_DISABLE]);
}

#[test]
fn webhooks_are_called_and_a_failing_connection_is_disabled_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    notifications_and_auto_disable(&[AUTO_DISABLE, ("SLUICE_DATABASE_URL", &db.url)]);
}

#[test]
fn a_daemons_job_calls_the_failure_webhook() {
    let sandbox = Sandbox::new();
    let hook = Receiver::start();
    setup(&sandbox, &[], &["--notify-failure", &hook.url]);
    std::fs::write(sandbox.path("failing"), "").unwrap();
    let _daemon = Daemon::start(&sandbox, false);
    let queued = sandbox.run(&["connection", "sync", "c", "--detach", "--max-attempts", "1"]);
    queued.expect_code(0);
    let id: i64 = queued.stdout().trim().parse().unwrap();
    wait_for_job(&sandbox, id, |j| j["status"] == "failed");
    let got = hook.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["data"]["job"], id);
    assert_eq!(got[0]["data"]["error"]["message"], "the API said no");
}

fn retention(env: &[(&str, &str)], sql: impl Fn(&Sandbox, &str)) {
    let sandbox = Sandbox::new();
    setup(&sandbox, env, &[]);
    for _ in 0..3 {
        sync(&sandbox, env).expect_code(0);
    }
    let jobs_dir = sandbox.data_dir().join("jobs");
    assert_eq!(crate::common::dir_names(&jobs_dir), ["1", "2", "3"]);
    // Jobs 1 and 3 ended 40 days ago; 3 is the connection's newest.
    let old = "(EXTRACT(EPOCH FROM now()) * 1000)::bigint - 40::bigint * 86400000";
    let old = if env.is_empty() {
        "CAST(strftime('%s','now') AS INTEGER) * 1000 - 40 * 86400000"
    } else {
        old
    };
    sql(&sandbox, &format!(
        "UPDATE jobs SET created_at = {old}, started_at = {old}, ended_at = {old} WHERE id IN (1, 3)"
    ));
    // Job 1's log was written in another data dir on this machine (of a
    // sluice sharing the store): it goes too.
    let elsewhere = sandbox.path("elsewhere/jobs/1/attempt-1.log");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::write(&elsewhere, "a log\n").unwrap();
    sql(
        &sandbox,
        &format!(
            "UPDATE attempts SET log_path = '{}' WHERE job_id = 1",
            elsewhere.display()
        ),
    );
    let daemon = Daemon::start_with_env(&sandbox, false, &["--retention", "30d"], env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (crate::common::dir_names(&jobs_dir).len() == 3 || elsewhere.exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(daemon);
    assert_eq!(crate::common::dir_names(&jobs_dir), ["2", "3"]);
    assert!(!elsewhere.exists());
    assert!(!elsewhere.parent().unwrap().exists());
    let jobs = run(&sandbox, env, &["-o", "json", "job", "list"]).json();
    let ids: Vec<i64> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2]);
    let logs = run(&sandbox, env, &["job", "logs", "3"]);
    logs.expect_code(0);
}

#[test]
fn retention_deletes_old_jobs_and_logs_but_keeps_each_connections_newest_sqlite() {
    retention(&[], |sandbox, sql| {
        let out = std::process::Command::new("sqlite3")
            .arg(sandbox.data_dir().join("sluice.db"))
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    });
}

#[test]
fn retention_deletes_old_jobs_and_logs_but_keeps_each_connections_newest_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    retention(&[("SLUICE_DATABASE_URL", &db.url)], |_, sql| {
        db.sql(sql);
    });
}
