//! The daemon: real `sluice daemon run` processes, and the CLI as their
//! client over the Unix socket and over TCP with the token. The same
//! commands give the same output and exit code in-process and through a
//! daemon.

use crate::common::{send_signal, Run, Sandbox};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// A daemon of a sandbox, stopped (SIGTERM) when dropped.
pub struct Daemon {
    child: Child,
    /// What it listens on: the socket first, then TCP.
    listen: Vec<String>,
}

impl Daemon {
    pub fn start(sandbox: &Sandbox, tcp: bool) -> Daemon {
        Daemon::start_with(sandbox, tcp, &[])
    }

    pub fn start_with(sandbox: &Sandbox, tcp: bool, args: &[&str]) -> Daemon {
        Daemon::start_with_env(sandbox, tcp, args, &[])
    }

    pub fn start_with_env(
        sandbox: &Sandbox,
        tcp: bool,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = sandbox.cmd();
        cmd.envs(env.iter().copied())
            .args(["daemon", "run"])
            .args(args);
        if tcp {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        Daemon::spawn(cmd)
    }

    /// Starts `cmd` (a `sluice daemon run`) and waits until it listens.
    fn spawn(mut cmd: std::process::Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the daemon says where it listens");
        let listen = line
            .trim()
            .split_once(" listening on ")
            .unwrap_or_else(|| panic!("not a listening line: {line:?}"))
            .1
            .split(", ")
            .map(String::from)
            .collect();
        Daemon { child, listen }
    }

    pub fn tcp(&self) -> &str {
        self.listen
            .iter()
            .find(|l| l.starts_with("http://"))
            .expect("a TCP address")
    }

    fn stop(mut self) -> std::process::ExitStatus {
        send_signal(self.child.id(), "-TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output that differs between two runs of the same commands only by
/// times, durations and the sandbox's own directory, made equal.
fn normalized(sandbox: &Sandbox, run: &Run) -> (i32, Value, String) {
    let dir = sandbox.dir.path().display().to_string();
    let stdout = run.stdout().replace(&dir, "<dir>");
    let mut json: Value = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.clone()))
    };
    scrub(&mut json);
    let stderr = run.stderr().replace(&dir, "<dir>");
    (run.code(), json, stderr)
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let timed = k == "at"
                    || k.ends_with("_at")
                    || k.ends_with("_ms")
                    || k == "installed_on"
                    || k == "owner"
                    || k == "duration";
                // Stable ids are random in each sandbox (numeric job
                // ids are the same in both).
                let random_id = (k == "id" || k == "uuid") && v.is_string();
                if timed && !v.is_null() {
                    *v = Value::String("<time>".into());
                } else if random_id {
                    *v = Value::String("<uuid>".into());
                } else {
                    scrub(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// A day with sluice: set up, sync, look at jobs and state, make mistakes,
/// export, tear down. Each command with `-o json`.
const SCRIPT: &[&[&str]] = &[
    &[
        "source",
        "create",
        "src",
        "--connector",
        "sample",
        "--config",
        r#"{"count": 25}"#,
    ],
    &["destination", "create", "dst", "--connector", "devnull"],
    &["source", "list"],
    &["source", "get", "src"],
    &["source", "check", "src"],
    &["source", "discover", "src"],
    &[
        "connection",
        "create",
        "c1",
        "--source",
        "src",
        "--destination",
        "dst",
        "--streams",
        "users",
    ],
    &["connection", "list"],
    &["connection", "get", "c1"],
    &["connection", "sync", "c1"],
    &["job", "list"],
    &["job", "get", "1"],
    &["state", "get", "c1"],
    // A job whose pre-flight check fails is recorded, failed with a
    // config error, wherever it runs.
    &[
        "destination",
        "create",
        "bad",
        "--connector",
        "jsonl",
        "--config",
        r#"{"path": "/proc/no-such-dir/out"}"#,
        "--no-check",
    ],
    &[
        "connection",
        "create",
        "c2",
        "--source",
        "src",
        "--destination",
        "bad",
        "--streams",
        "users",
    ],
    &["connection", "sync", "c2"],
    &["job", "get", "2"],
    &["connection", "delete", "c2"],
    &["destination", "delete", "bad"],
    &["connection", "disable", "c1"],
    &["connection", "sync", "c1"],
    &["connection", "enable", "c1"],
    &["connection", "update", "c1", "--schedule", "every:1h"],
    &["export"],
    &["connector", "spec", "sample"],
    &["connector", "check", "devnull"],
    &["connection", "get", "nope"],
    &["job", "get", "99"],
    &["source", "create", "src", "--connector", "sample"],
    &["source", "delete", "src"],
    &["connection", "delete", "c1"],
    &["source", "delete", "src"],
    &["destination", "delete", "dst"],
    &["connection", "list"],
];

fn play(sandbox: &Sandbox, env: &[(&str, &str)]) -> Vec<(String, (i32, Value, String))> {
    SCRIPT
        .iter()
        .map(|args| {
            let mut cmd = sandbox.cmd();
            cmd.args(["-o", "json"]).args(*args);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let run = Run(cmd.output().expect("run sluice"));
            (args.join(" "), normalized(sandbox, &run))
        })
        .collect()
}

fn assert_same(
    what: &str,
    expected: &[(String, (i32, Value, String))],
    got: &[(String, (i32, Value, String))],
) {
    for ((cmd, a), (_, b)) in expected.iter().zip(got) {
        assert_eq!(a, b, "`sluice {cmd}` differs {what}");
    }
}

#[test]
fn the_commands_answer_the_same_in_process_and_through_a_daemon() {
    let local = Sandbox::new();
    let expected = play(&local, &[]);
    // The script exercises failures too: their exit codes are part of it.
    let codes: Vec<i32> = expected.iter().map(|(_, (c, _, _))| *c).collect();
    assert!(codes.contains(&0) && codes.contains(&2), "{codes:?}");
    let (_, (code, failed, _)) = expected
        .iter()
        .find(|(cmd, _)| cmd == "connection sync c2")
        .unwrap();
    // A config error: exit 2, as for any sync it fails before a record.
    assert_eq!(*code, 2, "{failed}");
    assert_eq!(failed["status"], "failed", "{failed}");
    let failure = &failed["attempts"][0]["failure"];
    assert_eq!(failure["failure_type"], "config_error", "{failed}");

    // Found on the data dir's socket with nothing set.
    let socket = Sandbox::new();
    let daemon = Daemon::start(&socket, false);
    let got = play(&socket, &[]);
    assert_same("over the socket", &expected, &got);
    let status = socket.run(&["-o", "json", "daemon", "status"]);
    status.expect_code(0);
    assert_eq!(status.json()["listen"][0], daemon.listen[0]);
    assert!(daemon.stop().success());

    // Named with SLUICE_HOST, over TCP with the token.
    let tcp = Sandbox::new();
    let daemon = Daemon::start(&tcp, true);
    let token = tcp.run(&["daemon", "token"]);
    token.expect_code(0);
    let token = token.stdout().trim().to_string();
    let host = daemon.tcp().to_string();
    let got = play(&tcp, &[("SLUICE_HOST", &host), ("SLUICE_TOKEN", &token)]);
    assert_same("over TCP", &expected, &got);

    // Without the token, or with another: refused, nothing answered.
    for bad in [None, Some("not-the-token")] {
        let mut args = vec!["--host", host.as_str(), "connection", "list"];
        if let Some(t) = bad {
            args.extend(["--token", t]);
        }
        let run = tcp.run(&args);
        run.expect_code(2);
        assert!(run.stdout().is_empty(), "{}", run.stdout());
        assert!(run.stderr().contains("token"), "{}", run.stderr());
        assert!(
            run.stderr().contains("sluice daemon token"),
            "{}",
            run.stderr()
        );
    }
    assert!(daemon.stop().success());
}

#[test]
fn ids_survive_a_daemon_restart_and_its_routes_take_them() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, false);
    let created = sandbox.run(&[
        "-o",
        "json",
        "source",
        "create",
        "gen",
        "--connector",
        "sample",
    ]);
    created.expect_code(0);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let got = sandbox.run(&["-o", "json", "source", "get", &id]);
    got.expect_code(0);
    assert_eq!(got.json()["name"], "gen");
    assert!(daemon.stop().success());

    let _daemon = Daemon::start(&sandbox, false);
    let got = sandbox.run(&["-o", "json", "source", "get", &id]);
    got.expect_code(0);
    assert_eq!(
        (got.json()["name"].as_str(), got.json()["id"].as_str()),
        (Some("gen"), Some(id.as_str()))
    );
    let refused = sandbox.run(&["source", "create", &id, "--connector", "sample"]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("reads as a UUID"),
        "{}",
        refused.stderr()
    );
    sandbox.run(&["source", "delete", &id]).expect_code(0);
    let gone = sandbox.run(&["source", "get", &id]);
    gone.expect_code(2);
    assert!(
        gone.stderr().contains("there is no source with id"),
        "{}",
        gone.stderr()
    );
}

#[test]
fn a_daemon_that_does_not_answer_exits_3_naming_its_address() {
    let sandbox = Sandbox::new();
    let sock = sandbox.path("gone.sock");
    let host = format!("unix://{}", sock.display());
    for args in [
        vec!["--host", host.as_str(), "connection", "list"],
        vec!["--host", "http://127.0.0.1:9", "job", "list"],
    ] {
        let run = sandbox.run(&args);
        run.expect_code(3);
        let address = args[1];
        assert!(run.stderr().contains(address), "{}", run.stderr());
        assert!(
            run.stderr().contains("sluice daemon start"),
            "{}",
            run.stderr()
        );
    }
    // Another server at the address: said so, not printed.
    for (kind, body) in [
        (
            "text/html",
            "<!DOCTYPE html><html><body>It works!</body></html>",
        ),
        ("application/json", r#"{"status": "ok"}"#),
    ] {
        let host = foreign_server(kind, body);
        let run = sandbox.run(&["--host", &host, "job", "list"]);
        run.expect_code(3);
        assert!(run.stdout().is_empty(), "{}", run.stdout());
        let said = format!("{host} does not look like a sluice daemon (it answered 200 OK, {kind}");
        assert!(run.stderr().contains(&said), "{}", run.stderr());
        assert!(run.stderr().contains("hint:"), "{}", run.stderr());
    }
    // The lifecycle commands act on this machine's daemon only.
    for verb in ["stop", "token", "start"] {
        let run = sandbox.run(&["--host", "http://127.0.0.1:9", "daemon", verb]);
        run.expect_code(2);
        assert!(
            run.stderr().contains("this machine's daemon"),
            "{}",
            run.stderr()
        );
    }
    // With nothing named and no daemon, commands run in this process.
    sandbox.run(&["connection", "list"]).expect_code(0);
    let run = sandbox.run(&["daemon", "status"]);
    run.expect_code(3);
    assert!(
        run.stderr().contains("no sluice daemon"),
        "{}",
        run.stderr()
    );
}

/// An HTTP server that is not sluice, answering every request with `body`
/// as `kind`: its address.
fn foreign_server(kind: &'static str, body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    host
}

#[test]
fn one_daemon_per_data_dir_and_start_stop_manage_a_detached_one() {
    let sandbox = Sandbox::new();
    let started = sandbox.run(&["-o", "json", "daemon", "start"]);
    started.expect_code(0);
    let status = sandbox.run(&["-o", "json", "daemon", "status"]);
    status.expect_code(0);
    let pid = status.json()["pid"].as_u64().unwrap();
    assert_eq!(started.json()["pid"], pid);
    assert!(started.json()["log"].is_string(), "{}", started.stdout());
    // Its status as a table of fields, with no empty header above.
    let table = sandbox.run(&["daemon", "status"]).stdout();
    let first = table.lines().nth(1).unwrap_or_default();
    assert!(first.contains("Version"), "{table}");
    // The socket and the token are private.
    use std::os::unix::fs::PermissionsExt;
    for (file, mode) in [("daemon.sock", 0o600), ("daemon.token", 0o600)] {
        sandbox.run(&["daemon", "token"]).expect_code(0);
        let meta = std::fs::metadata(sandbox.data_dir().join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }

    let second = sandbox.run(&["daemon", "run"]);
    second.expect_code(2);
    assert!(
        second.stderr().contains(&format!("pid {pid}")),
        "{}",
        second.stderr()
    );
    let again = sandbox.run(&["daemon", "start"]);
    again.expect_code(2);

    let stop = sandbox.run(&["-o", "json", "daemon", "stop"]);
    stop.expect_code(0);
    assert_eq!(
        stop.json(),
        serde_json::json!({"pid": pid, "stopped": true})
    );
    assert!(!sandbox.data_dir().join("daemon.sock").exists());
    // Stopped: commands run in this process again; status says so.
    sandbox.run(&["daemon", "status"]).expect_code(3);
    sandbox.run(&["connection", "list"]).expect_code(0);
    let none = sandbox.run(&["daemon", "stop"]);
    none.expect_code(0);
    assert!(
        none.stderr().contains("No sluice daemon"),
        "{}",
        none.stderr()
    );
    let none = sandbox.run(&["-o", "json", "daemon", "stop"]);
    assert_eq!(
        none.json(),
        serde_json::json!({"pid": null, "stopped": false})
    );
}

#[test]
fn the_api_answers_bad_input_with_json_errors_and_stores_nothing() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, true);
    let token = sandbox
        .run(&["daemon", "token"])
        .stdout()
        .trim()
        .to_string();
    let base = daemon.tcp().to_string();
    let curl = |args: &[&str]| -> (u16, Value) {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .args(args)
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (
            code.parse().unwrap(),
            serde_json::from_str(body).unwrap_or(Value::String(body.into())),
        )
    };
    let post = |path: &str, body: &str| {
        curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &format!("{base}{path}"),
        ])
    };
    for (path, body, status) in [
        ("/api/v1/sources", "{not json", 400),
        ("/api/v1/sources", r#"{"kind": "source", "name": 5}"#, 400),
        (
            "/api/v1/sources",
            r#"{"kind": "source", "name": "../../etc", "connector": "sample"}"#,
            400,
        ),
        // A relative path would move with whatever runs the config.
        (
            "/api/v1/destinations",
            r#"{"kind": "destination", "name": "rel", "connector": "jsonl", "config": {"path": "./out"}}"#,
            400,
        ),
        (
            "/api/v1/connections/nope/jobs",
            r#"{"connection": "nope", "kind": "sync"}"#,
            404,
        ),
        // The path names the connection; a sync unless the body says.
        ("/api/v1/connections/nope/jobs", "{}", 404),
        ("/api/v1/nowhere", "{}", 404),
    ] {
        let (code, json) = post(path, body);
        assert_eq!(code, status, "{path} {body}: {json}");
        assert!(json["error"]["message"].is_string(), "{json}");
        assert!(json["error"]["code"].is_string(), "{json}");
    }
    // Over the limit: 413, with the API's error.
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(17 << 20));
    let path = sandbox.write("big.json", &big);
    let (code, json) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &format!("@{}", path.display()),
        &format!("{base}/api/v1/sources"),
    ]);
    assert_eq!(code, 413, "{json}");
    assert_eq!(json["error"]["code"], "too_large");
    // Nothing was stored.
    let (code, json) = curl(&[&format!("{base}/api/v1/sources")]);
    assert_eq!((code, json), (200, serde_json::json!([])));
    // Health and readiness.
    assert_eq!(curl(&[&format!("{base}/healthz")]).0, 200);
    assert_eq!(curl(&[&format!("{base}/readyz")]).0, 200);
    drop(daemon);
}

#[test]
fn on_tcp_only_healthz_answers_without_the_token_and_says_nothing_more() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, true);
    let base = daemon.tcp().to_string();
    let get = |path: &str| -> (u16, String) {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
            .arg(format!("{base}{path}"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    };
    // A load balancer's probe has no token: alive, the version, no more.
    let (code, body) = get("/healthz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
    for path in [
        "/readyz",
        "/metrics",
        "/api/v1/daemon",
        "/api/v1/connections",
    ] {
        let (code, body) = get(path);
        assert_eq!(code, 401, "{path}: {body}");
    }
    drop(daemon);
}

#[test]
fn the_connection_list_is_kept_until_the_store_changes_and_names_its_revision() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, true);
    for args in [
        &[
            "source",
            "create",
            "s",
            "--connector",
            "sample",
            "--config",
            r#"{"count": 3}"#,
        ][..],
        &["destination", "create", "d", "--connector", "devnull"],
        &[
            "connection",
            "create",
            "c",
            "--source",
            "s",
            "--destination",
            "d",
        ],
    ] {
        sandbox.run(args).expect_code(0);
    }
    let token = sandbox
        .run(&["daemon", "token"])
        .stdout()
        .trim()
        .to_string();
    let json = sandbox.run(&["-o", "json", "daemon", "token"]).json();
    assert_eq!(json, serde_json::json!({ "token": token }));
    let url = format!("{}/api/v1/connections", daemon.tcp());
    // (status, etag, body) of a GET, with an If-None-Match when given.
    let get = |etag: Option<&str>| -> (u16, String, Value) {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-s", "-D", "-", "-H"])
            .arg(format!("Authorization: Bearer {token}"));
        if let Some(e) = etag {
            cmd.arg("-H").arg(format!("If-None-Match: {e}"));
        }
        let out = cmd.arg(&url).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let etag = head
            .lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .unwrap_or_default()
            .to_string();
        (
            status,
            etag,
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    };
    let (status, first, list) = get(None);
    assert_eq!(status, 200);
    assert!(first.starts_with('"'), "an ETag: {first:?}");
    assert_eq!(list[0]["status"], "active");
    assert!(list[0]["last_job"].is_null());
    let (status, again, body) = get(Some(&first));
    assert_eq!(
        (status, again.as_str(), body),
        (304, first.as_str(), Value::Null)
    );

    // A change through the CLI shows at once, with another ETag.
    sandbox.run(&["connection", "disable", "c"]).expect_code(0);
    let (status, disabled, list) = get(Some(&first));
    assert_eq!(status, 200);
    assert_ne!(disabled, first);
    assert_eq!(list[0]["status"], "inactive");
    // So does a job's end.
    sandbox.run(&["connection", "enable", "c"]).expect_code(0);
    sandbox.run(&["connection", "sync", "c"]).expect_code(0);
    let (_, synced, list) = get(Some(&disabled));
    assert_ne!(synced, disabled);
    assert_eq!(list[0]["last_job"]["status"], "succeeded", "{list}");
    // The CLI's listing through the daemon is the same as the API's.
    let cli = sandbox.run(&["-o", "json", "connection", "list"]).json();
    assert_eq!(cli, list);
    drop(daemon);
}

/// A source that logs, waits `seconds`, and logs again before its record.
fn slow_source_for(sandbox: &Sandbox, seconds: u32) -> String {
    let spec = r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}"#;
    let catalog = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh"]}]}}"#;
    let check = r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}"#;
    let log =
        |m: &str| format!(r#"echo '{{"type":"LOG","log":{{"level":"INFO","message":"{m}"}}}}'"#);
    sandbox.script(
        "slow",
        &format!(
            "case \"$1\" in\n  spec) echo '{spec}' ;;\n  check) echo '{check}' ;;\n  discover) echo '{catalog}' ;;\n  read)\n{}\nsleep {seconds}\n{}\necho '{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"s\",\"data\":{{\"x\":1}},\"emitted_at\":1}}}}'\n  ;;\nesac",
            log("first words"),
            log("last words"),
        ),
    )
}

#[test]
fn a_running_jobs_log_is_followed_to_its_end_and_metrics_count_it() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, true);
    slow_connection(&sandbox, 2);
    let mut sync = sandbox.cmd();
    let mut sync = sync
        .args(["connection", "sync", "c"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Follow as soon as the job has an attempt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let jobs = sandbox.run(&["-o", "json", "job", "get", "1"]);
        if jobs.code() == 0 && !jobs.json()["attempts"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no attempt began");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let followed = sandbox.run(&["job", "logs", "1", "--follow"]);
    followed.expect_code(0);
    // It ended with the job, having given what came after it began.
    let log = followed.stdout();
    assert!(
        log.contains("first words") && log.contains("last words"),
        "{log}"
    );
    assert!(sync.wait().unwrap().success());
    let job = sandbox.run(&["-o", "json", "job", "get", "1"]).json();
    assert_eq!(job["status"], "succeeded");
    // The same log, whole, once it has ended.
    let whole = sandbox.run(&["job", "logs", "1"]);
    assert_eq!(whole.stdout(), log);

    let token = sandbox
        .run(&["daemon", "token"])
        .stdout()
        .trim()
        .to_string();
    let out = std::process::Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{}/metrics", daemon.tcp()))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout).to_string();
    for line in [
        "sluice_jobs{status=\"succeeded\"} 1",
        "sluice_connection_records_total{connection=\"c\"} 1",
        "sluice_attempt_duration_seconds_count 1",
        "# EOF",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
}

/// `sluice -o json job get ID`, once `done` holds of it or the deadline
/// has passed.
pub fn wait_for_job(sandbox: &Sandbox, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let run = sandbox.run(&["-o", "json", "job", "get", &id.to_string()]);
        if run.code() == 0 && done(&run.json()) {
            return run.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never got there: {}{}",
            run.stdout(),
            run.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The pids of processes whose command line names `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

fn running_attempt(job: &Value) -> bool {
    job["status"] == "running"
        && job["attempts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["status"] == "running"))
}

/// The connection `c` from a slow source (`seconds`) to devnull; the
/// source's reference.
fn slow_connection(sandbox: &Sandbox, seconds: u32) -> String {
    let source = slow_source_for(sandbox, seconds);
    for args in [
        vec![
            "source",
            "create",
            "slow",
            "--connector",
            &source,
            "--no-check",
        ],
        vec!["destination", "create", "nowhere", "--connector", "devnull"],
        vec![
            "connection",
            "create",
            "c",
            "--source",
            "slow",
            "--destination",
            "nowhere",
        ],
    ] {
        sandbox.run(&args).expect_code(0);
    }
    source
}

fn queued_job(sandbox: &Sandbox, seconds: u32) -> (String, i64) {
    let source = slow_connection(sandbox, seconds);
    let queued = sandbox.run(&["connection", "sync", "c", "--detach"]);
    queued.expect_code(0);
    let id = queued.stdout().trim().parse().expect("a job id");
    (source, id)
}

#[test]
fn a_job_of_a_killed_daemon_is_taken_over_after_a_restart_and_its_connectors_die() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start_with(&sandbox, false, &["--lease", "2s"]);
    let (source, id) = queued_job(&sandbox, 4);
    wait_for_job(&sandbox, id, running_attempt);
    let script = source.trim_start_matches("exec:").to_string();
    assert!(!processes_naming(&script).is_empty(), "the source runs");

    send_signal(daemon.child.id(), "-KILL");
    drop(daemon);
    // The source dies with the daemon that spawned it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_naming(&script).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the source outlived its daemon"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let daemon = Daemon::start_with(&sandbox, false, &["--lease", "2s"]);
    let job = wait_for_job(&sandbox, id, |j| j["ended_at"].is_i64());
    assert_eq!(job["status"], "succeeded", "{job}");
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(attempts[0]["status"], "failed", "{job}");
    assert_eq!(attempts[0]["failure"]["origin"], "platform", "{job}");
    assert_eq!(attempts[1]["status"], "succeeded", "{job}");
    assert!(daemon.stop().success());
}

#[test]
fn job_cancel_stops_a_running_job_and_a_graceful_stop_lets_one_finish() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, false);
    let (source, id) = queued_job(&sandbox, 30);
    wait_for_job(&sandbox, id, running_attempt);
    let asked = std::time::Instant::now();
    sandbox
        .run(&["job", "cancel", &id.to_string()])
        .expect_code(0);
    let job = wait_for_job(&sandbox, id, |j| j["ended_at"].is_i64());
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(job["status"], "cancelled", "{job}");
    let last = job["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["failure"]["failure_type"], "manual_cancellation",
        "{job}"
    );
    let script = source.trim_start_matches("exec:").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_naming(&script).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the source outlived its cancel"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // An ended job cannot be cancelled again.
    sandbox
        .run(&["job", "cancel", &id.to_string()])
        .expect_code(2);
    drop(daemon);

    // SIGTERM while a short job runs: it finishes within the grace, and
    // the daemon exits 0.
    let daemon = Daemon::start_with(&sandbox, false, &["--grace", "60s"]);
    sandbox
        .run(&[
            "source",
            "update",
            "slow",
            "--connector",
            &slow_source_for(&sandbox, 2),
            "--no-check",
        ])
        .expect_code(0);
    let queued = sandbox.run(&["connection", "sync", "c", "--detach"]);
    queued.expect_code(0);
    let id: i64 = queued.stdout().trim().parse().unwrap();
    wait_for_job(&sandbox, id, running_attempt);
    assert!(daemon.stop().success());
    let job = sandbox
        .run(&["-o", "json", "job", "get", &id.to_string()])
        .json();
    assert_eq!(job["status"], "succeeded", "{job}");
}

/// Two daemons on one PostgreSQL store: queued jobs run once each, spread
/// over both; when one is killed mid-job, the other takes the job over.
#[test]
fn two_daemons_share_a_postgres_store_and_take_over_each_others_jobs() {
    let Some(db) = crate::common::PgDatabase::create() else {
        return;
    };
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let run = |s: &Sandbox, args: &[&str]| {
        let mut cmd = s.cmd();
        cmd.env("SLUICE_DATABASE_URL", &db.url).args(args);
        Run(cmd.output().expect("run sluice"))
    };
    let daemon = |s: &Sandbox| {
        let mut cmd = s.cmd();
        cmd.env("SLUICE_DATABASE_URL", &db.url).args([
            "daemon",
            "run",
            "--lease",
            "6s",
            "--max-jobs",
            "2",
        ]);
        Daemon::spawn(cmd)
    };
    let mut setup = String::from(
        "sources: {s: {connector: sample, config: {count: 40000}}}\n\
         destinations: {d: {connector: devnull}}\nconnections:\n",
    );
    for i in 0..50 {
        setup.push_str(&format!(
            "  c{i}: {{source: s, destination: d, streams: [users]}}\n"
        ));
    }
    let file = a.write("setup.yaml", &setup);
    run(&a, &["apply", "-f", file.to_str().unwrap()]).expect_code(0);

    let (da, db_) = (daemon(&a), daemon(&b));
    for i in 0..50 {
        run(&a, &["connection", "sync", &format!("c{i}"), "--detach"]).expect_code(0);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let jobs = loop {
        let jobs = run(&b, &["-o", "json", "job", "list", "--limit", "0"]).json();
        let open = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["ended_at"].is_null())
            .count();
        if open == 0 {
            break jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} jobs never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 50);
    let mut owners = std::collections::BTreeSet::new();
    for j in jobs {
        assert_eq!(j["status"], "succeeded", "{j}");
        let detail = run(&b, &["-o", "json", "job", "get", &j["id"].to_string()]).json();
        assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");
        owners.insert(j["owner"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(owners.len(), 2, "both daemons ran jobs: {owners:?}");

    // A slow job, run by whichever daemon claims it; kill that one.
    let slow = slow_source_for(&a, 4);
    run(
        &a,
        &[
            "source",
            "create",
            "slow",
            "--connector",
            &slow,
            "--no-check",
        ],
    )
    .expect_code(0);
    run(
        &a,
        &[
            "connection",
            "create",
            "sc",
            "--source",
            "slow",
            "--destination",
            "d",
        ],
    )
    .expect_code(0);
    let queued = run(&a, &["connection", "sync", "sc", "--detach"]);
    queued.expect_code(0);
    let id = queued.stdout().trim().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let owner = loop {
        let job = run(&b, &["-o", "json", "job", "get", &id]).json();
        if running_attempt(&job) {
            break job["owner"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow job never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (victim, survivor, survivor_box) = if owner.contains(&format!("pid {} ", da.child.id())) {
        (da, db_, &b)
    } else {
        (db_, da, &a)
    };
    send_signal(victim.child.id(), "-KILL");
    drop(victim);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let job = loop {
        let job = run(&b, &["-o", "json", "job", "get", &id]).json();
        if job["ended_at"].is_i64() {
            break job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job was never taken over"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(attempts[0]["failure"]["origin"], "platform", "{job}");

    // One scheduler leads: the survivor's, now. A new daemon stands by
    // until the leader dies, then takes over (within its retry, 10 s).
    let leads =
        |s: &Sandbox| run(s, &["-o", "json", "daemon", "status"]).json()["scheduler_leads"] == true;
    let within = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    within("the survivor never led the scheduler", &|| {
        leads(survivor_box)
    });
    let c = Sandbox::new();
    let standby = daemon(&c);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(!leads(&c), "two schedulers lead");
    send_signal(survivor.child.id(), "-KILL");
    drop(survivor);
    within("the standby never took the scheduler over", &|| leads(&c));
    assert!(standby.stop().success());
}

#[test]
fn a_cron_schedule_fires_in_the_daemon_and_stops_when_disabled() {
    let sandbox = Sandbox::new();
    // Every second, which only tests may ask for.
    let seconds = [("SLUICE_SCHEDULE_SECONDS", "allow")];
    let daemon = Daemon::start_with_env(&sandbox, false, &[], &seconds);
    sandbox
        .run(&[
            "source",
            "create",
            "s",
            "--connector",
            "sample",
            "--config",
            r#"{"count": 5}"#,
        ])
        .expect_code(0);
    sandbox
        .run(&["destination", "create", "d", "--connector", "devnull"])
        .expect_code(0);
    // Every second (croner reads six fields as seconds first).
    let create = sandbox
        .cmd()
        .envs(seconds)
        .args([
            "connection",
            "create",
            "c",
            "--source",
            "s",
            "--destination",
            "d",
            "--schedule",
            "cron:* * * * * *",
            "--timezone",
            "Europe/Paris",
        ])
        .output()
        .expect("run sluice");
    Run(create).expect_code(0);
    let jobs = || {
        sandbox
            .run(&["-o", "json", "job", "list", "--limit", "0"])
            .json()
            .as_array()
            .unwrap()
            .clone()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while jobs().iter().filter(|j| j["status"] == "succeeded").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule never fired twice"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // How late it fired is measured.
    let socket = daemon.listen[0]
        .strip_prefix("unix://")
        .expect("the socket first");
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket", socket, "http://sluice/metrics"])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout).to_string();
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_scheduler_lag_seconds "))
        .unwrap_or_else(|| panic!("no scheduler lag in:\n{metrics}"))
        .parse()
        .unwrap();
    assert!((0.0..5.0).contains(&lag), "lag {lag}");
    sandbox.run(&["connection", "disable", "c"]).expect_code(0);
    // One job may have been queued as it was disabled; none after that.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let settled = jobs().len();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(jobs().len(), settled, "it fired while disabled");
    let status = sandbox.run(&["-o", "json", "daemon", "status"]).json();
    assert_eq!(status["next_runs"], serde_json::json!([]), "{status}");
    // Each says the schedule started it; one asked for says so too.
    assert!(jobs().iter().all(|j| j["trigger"] == "scheduled"));
    sandbox.run(&["connection", "enable", "c"]).expect_code(0);
    sandbox
        .run(&["connection", "update", "c", "--schedule", "manual"])
        .expect_code(0);
    let asked = sandbox
        .run(&["-o", "json", "connection", "sync", "c"])
        .json();
    assert_eq!(asked["trigger"], "manual", "{asked}");
    let table = sandbox.run(&["job", "list"]).stdout();
    assert!(
        table.contains("Trigger") && table.contains("scheduled") && table.contains("manual"),
        "{table}"
    );
    assert!(daemon.stop().success());
}
