//! Jobs and their attempts: a crash is retried from the committed state,
//! attempts without progress give up, Ctrl-C cancels and keeps what was
//! committed, and one job runs per connection at a time (an orphaned one is
//! ended by the next).

use super::{echo_lines, record, script_source, setup_connection, state, Env};
use crate::common::{read_jsonl, send_signal};
use serde_json::{json, Value};
use std::process::Command;

both_backends!(
    a_crashed_attempt_is_retried_from_its_committed_state,
    attempts_without_progress_give_up,
    ctrl_c_cancels_the_job_and_keeps_the_committed_state,
    one_job_at_a_time_and_orphans_are_ended,
);

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
