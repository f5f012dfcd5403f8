//! Docker connectors against a real engine, with images built here from
//! the test connector (tests/connector) by scripts/build-test-connector:
//! no registry is reached. Without an engine these tests skip loudly, and
//! fail under CI=true (see `common::require`); scripts/lib/docker.sh
//! starts one.

use crate::common::{read_jsonl, records_by_stream, require, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The test connector: its static binary and its images.
struct Built {
    binary: PathBuf,
    images: BTreeMap<String, String>,
}

impl Built {
    /// `docker:IMAGE` of a variant (plain, airbyte-entrypoint, uid, named-user).
    fn docker(&self, variant: &str) -> String {
        format!("docker:{}", self.images[variant])
    }
}

fn engine_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The images, built once per test run; `None` (the test skips) without
/// an engine outside CI.
fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Built> = OnceLock::new();
    if !require(engine_answers(), "a Docker engine (`docker info` failed)") {
        return None;
    }
    Some(BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-test-connector");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run scripts/build-test-connector");
        assert!(
            out.status.success(),
            "scripts/build-test-connector failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut images: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let binary = PathBuf::from(images.remove("binary").expect("the binary's path"));
        Built { binary, images }
    }))
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ids of the containers a sluice process started, in any state.
fn containers_of(pid: u32, extra: &[&str]) -> Vec<String> {
    let label = format!("label=sluice.pid={pid}");
    let mut args = vec!["ps", "--all", "--quiet", "--no-trunc", "--filter", &label];
    for f in extra {
        args.extend(["--filter", f]);
    }
    docker(&args).lines().map(str::to_string).collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cursor of `stream` in a state file, if one was committed.
fn cursor(state_file: &Path, stream: &str) -> Option<u64> {
    let text = std::fs::read_to_string(state_file).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    state
        .as_array()?
        .iter()
        .find(|s| s["stream"]["stream_descriptor"]["name"] == stream)?["stream"]["stream_state"]
        ["cursor"]
        .as_u64()
}

fn ids(path: &Path) -> Vec<u64> {
    read_jsonl(path)
        .iter()
        .map(|r| r["id"].as_u64().expect("an id"))
        .collect()
}

fn sync(s: &Sandbox, source: &str, sc: Value, dest: &str, dc: Value, extra: &[&str]) -> Run {
    let (sc, dc) = (sc.to_string(), dc.to_string());
    let mut args = vec![
        "sync",
        "--output",
        "json",
        "--source",
        source,
        "--source-config",
        &sc,
        "--destination",
        dest,
        "--destination-config",
        &dc,
    ];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn spawn_sync(
    s: &Sandbox,
    source: &str,
    sc: Value,
    dest: &str,
    dc: Value,
    extra: &[&str],
) -> Child {
    let (sc, dc) = (sc.to_string(), dc.to_string());
    s.cmd()
        .args([
            "sync",
            "--output",
            "json",
            "--source",
            source,
            "--source-config",
            &sc,
            "--destination",
            dest,
            "--destination-config",
            &dc,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice")
}

#[test]
fn docker_source_to_docker_destination_moves_every_record_and_commits_state() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let out = s.path("out");
    let state = s.path("state.json");
    let img = b.docker("plain");
    let args = [
        "--sync-mode",
        "incremental",
        "--state",
        state.to_str().unwrap(),
        "--local-root",
        out.to_str().unwrap(),
    ];
    let run = sync(
        &s,
        &img,
        json!({"count": 1000, "checkpoint_every": 100, "record_size": 50}),
        &img,
        json!({"output_dir": "/local/items"}),
        &args,
    );
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["records"], 1000);
    assert_eq!(summary["records_committed"], 1000);
    assert_eq!(summary["streams"][0]["checkpoints"], 10);
    assert_eq!(
        ids(&out.join("items/items.jsonl")),
        (1..=1000).collect::<Vec<_>>()
    );
    assert_eq!(cursor(&state, "items"), Some(1000));

    // Incremental: nothing new, and the state stays.
    let again = sync(
        &s,
        &img,
        json!({"count": 1000, "checkpoint_every": 100}),
        &img,
        json!({"output_dir": "/local/items"}),
        &args,
    );
    again.expect_code(0);
    assert_eq!(again.json()["records"], 0);
    assert_eq!(cursor(&state, "items"), Some(1000));
    assert_eq!(read_jsonl(&out.join("items/items.jsonl")).len(), 1000);
}

#[test]
fn docker_source_to_builtin_jsonl() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let state = s.path("state.json");
    let run = sync(
        &s,
        &b.docker("plain"),
        json!({"count": 250, "streams": ["apples", "pears"], "checkpoint_every": 100}),
        "jsonl",
        json!({"path": s.path("out").to_str().unwrap()}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(
        records_by_stream(&summary),
        BTreeMap::from([("apples".to_string(), 250), ("pears".to_string(), 250)])
    );
    assert_eq!(summary["records_committed"], 500);
    assert_eq!(
        ids(&s.path("out/apples.jsonl")),
        (1..=250).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&s.path("out/pears.jsonl")),
        (1..=250).collect::<Vec<_>>()
    );
    assert_eq!(cursor(&state, "apples"), Some(250));
    assert_eq!(cursor(&state, "pears"), Some(250));
}

#[test]
fn builtin_sample_to_docker_destination() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let out = s.path("out");
    let state = s.path("state.json");
    let run = sync(
        &s,
        "sample",
        json!({"count": 300, "streams": ["users", "orders"], "checkpoint_every": 50}),
        &b.docker("plain"),
        json!({"output_dir": "/local/sample"}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
            "--local-root",
            out.to_str().unwrap(),
        ],
    );
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(
        records_by_stream(&summary),
        BTreeMap::from([("orders".to_string(), 300), ("users".to_string(), 300)])
    );
    assert_eq!(summary["records_committed"], 600);
    for stream in ["users", "orders"] {
        assert_eq!(
            ids(&out.join(format!("sample/{stream}.jsonl"))),
            (1..=300).collect::<Vec<_>>(),
            "{stream}"
        );
    }
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(state.as_array().unwrap().len(), 2, "{state}");
}

#[test]
fn every_protocol_command_runs_in_a_container() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let img = b.docker("plain");
    let spec = s.run(&["connector", "spec", &img, "--output", "json"]);
    spec.expect_code(0);
    let spec: Value = serde_json::from_str(spec.stdout().trim()).unwrap();
    assert_eq!(spec["type"], "SPEC");
    assert_eq!(spec["spec"]["supportsIncremental"], true);

    let check = s.run(&[
        "connector",
        "check",
        &img,
        "--config",
        "{}",
        "--output",
        "json",
    ]);
    check.expect_code(0);
    assert!(
        check.stdout().contains("\"status\":\"SUCCEEDED\""),
        "{}",
        check.stdout()
    );
    let failed = s.run(&[
        "connector",
        "check",
        &img,
        "--config",
        r#"{"check_fails": true}"#,
    ]);
    failed.expect_code(1);
    assert!(failed.stdout().contains("FAILED"), "{}", failed.stdout());

    let discover = s.run(&[
        "connector",
        "discover",
        &img,
        "--config",
        r#"{"streams": ["a", "b"]}"#,
        "-o",
        "json",
    ]);
    discover.expect_code(0);
    let catalog: Value = serde_json::from_str(discover.stdout().trim()).unwrap();
    let names: Vec<&str> = catalog["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);

    // read, resuming from a state: the state file reaches the container.
    let catalog = s.write(
        "catalog.json",
        &json!({"streams": [{
            "stream": {"name": "items", "json_schema": {}, "supported_sync_modes": ["incremental"]},
            "sync_mode": "incremental",
            "destination_sync_mode": "append"
        }]})
        .to_string(),
    );
    let state = s.write(
        "state.json",
        &json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "items"}, "stream_state": {"cursor": 7}}}])
            .to_string(),
    );
    let read = s.run(&[
        "connector",
        "read",
        &img,
        "--config",
        r#"{"count": 10}"#,
        "--catalog",
        catalog.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    read.expect_code(0);
    let lines: Vec<Value> = read
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let read_ids: Vec<u64> = lines
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| m["record"]["data"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(read_ids, [8, 9, 10]);

    // write: stdin reaches the container and its end ends the container.
    let input = format!(
        "{}\n{}\n",
        json!({"type": "RECORD", "record": {"stream": "items", "data": {"id": 1}, "emitted_at": 0}}),
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "items"}, "stream_state": {"cursor": 1}}}})
    );
    let mut child = s
        .cmd()
        .args([
            "connector",
            "write",
            &img,
            "--config",
            "{}",
            "--catalog",
            catalog.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echoed = String::from_utf8_lossy(&out.stdout);
    assert!(echoed.contains("\"cursor\":1"), "{echoed}");
    assert!(echoed.contains("wrote 1 records"), "{echoed}");
}

#[test]
fn images_start_as_the_platform_starts_them() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    // AIRBYTE_ENTRYPOINT wins over an ENTRYPOINT that does not exist.
    let r = s.run(&[
        "connector",
        "check",
        &b.docker("airbyte-entrypoint"),
        "--config",
        "{}",
    ]);
    r.expect_code(0);
    // Images that run as another user can read their config (mode 0600).
    let r = s.run(&[
        "connector",
        "check",
        &b.docker("uid"),
        "--config",
        "{}",
        "-o",
        "json",
    ]);
    r.expect_code(0);
    assert!(r.stdout().contains("uid=4242"), "{}", r.stdout());
    let r = s.run(&[
        "connector",
        "check",
        &b.docker("named-user"),
        "--config",
        "{}",
        "-o",
        "json",
    ]);
    r.expect_code(0);
    assert!(r.stdout().contains("uid=5151"), "{}", r.stdout());
}

#[test]
fn an_entrypoint_that_cannot_start_says_so_and_leaves_nothing() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    for transport in ["pipes", "attach"] {
        let child = s
            .cmd()
            .env("SLUICE_DOCKER_TRANSPORT", transport)
            .args(["connector", "check", &b.docker("broken"), "--config", "{}"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{transport}: {err}");
        assert!(err.contains("/no/such/entrypoint"), "{transport}: {err}");
        assert!(
            containers_of(pid, &[]).is_empty(),
            "{transport}: a container is left"
        );
    }
}

#[test]
fn a_container_over_its_memory_limit_fails_the_sync_as_oom_killed() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let img = b.docker("plain");
    let run = sync(
        &s,
        &img,
        json!({"count": 100}),
        &img,
        json!({"hog_mb": 400}),
        &["--memory", "64m"],
    );
    run.expect_code(1);
    let failure = &run.json()["failure"];
    assert_eq!(failure["origin"], "destination");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "destination {img} was killed for exceeding its 64 MiB memory limit"
        )),
        "{message}"
    );
    let human = s.run(&[
        "sync",
        "--source",
        &img,
        "--source-config",
        r#"{"count": 100}"#,
        "--destination",
        &img,
        "--destination-config",
        r#"{"hog_mb": 400}"#,
        "--memory",
        "64m",
    ]);
    human.expect_code(1);
    assert!(
        human
            .stderr()
            .contains("was killed for exceeding its 64 MiB memory limit"),
        "{}",
        human.stderr()
    );
}

/// A sync whose source is slow enough to be caught running.
fn slow_sync(s: &Sandbox, b: &Built, state: &Path) -> Child {
    let img = b.docker("plain");
    spawn_sync(
        s,
        &img,
        json!({"count": 100000, "checkpoint_every": 20, "delay_ms": 2}),
        &img,
        json!({}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
        ],
    )
}

#[test]
fn a_container_killed_mid_sync_fails_it_and_keeps_the_committed_state() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let state = s.path("state.json");
    let child = slow_sync(&s, b, &state);
    let pid = child.id();
    let source = wait_for("the source container", Duration::from_secs(60), || {
        containers_of(
            pid,
            &[
                "label=sluice.role=source",
                "label=sluice.command=read",
                "status=running",
            ],
        )
        .into_iter()
        .next()
    });
    // Labels, limits and privileges, as the engine sees them.
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &source])).unwrap();
    let c = &inspect[0];
    let labels = &c["Config"]["Labels"];
    assert!(
        labels["sluice.job"]
            .as_str()
            .unwrap()
            .starts_with("inline-"),
        "{labels}"
    );
    assert_eq!(labels["sluice.attempt"], "1");
    assert_eq!(labels["sluice.role"], "source");
    assert_eq!(labels["sluice.pid"], pid.to_string());
    assert_eq!(c["HostConfig"]["Memory"], 2u64 << 30);
    assert_eq!(c["HostConfig"]["NanoCpus"], 2_000_000_000u64);
    assert_eq!(c["HostConfig"]["Privileged"], false);
    assert_eq!(c["HostConfig"]["CapDrop"], json!(["ALL"]));
    // The machine's network by default, as Airbyte's launcher does.
    assert_eq!(c["HostConfig"]["NetworkMode"], "host");
    assert_eq!(
        labels["sluice.run"].as_str().map(str::is_empty),
        Some(false)
    );
    let mounts = c["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Destination"] == "/sluice" && m["RW"] == false),
        "{mounts:?}"
    );

    wait_for("a committed state", Duration::from_secs(60), || {
        cursor(&state, "items").filter(|c| *c >= 100)
    });
    docker(&["kill", &source]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = summary["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("was killed by signal 9 (SIGKILL)"),
        "{message}"
    );
    assert!(
        containers_of(pid, &[]).is_empty(),
        "every container is removed"
    );

    let committed = cursor(&state, "items").unwrap();
    assert_eq!(committed % 20, 0, "only a checkpoint is committed");
    assert_eq!(summary["records_committed"], committed);
    // The next sync resumes from the committed state.
    let img = b.docker("plain");
    let rest = sync(
        &s,
        &img,
        json!({"count": 100000, "checkpoint_every": 20000}),
        &img,
        json!({}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    rest.expect_code(0);
    assert_eq!(rest.json()["records"], 100000 - committed);
    assert_eq!(cursor(&state, "items"), Some(100000));
}

#[test]
fn sluice_killed_mid_sync_leaves_containers_for_the_sweeper() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let state = s.path("state.json");
    // The source goes quiet after 200 records, so it is still running, not
    // writing (which would end it), when sluice is gone.
    let img = b.docker("plain");
    let mut child = spawn_sync(
        &s,
        &img,
        json!({"count": 1000, "checkpoint_every": 20, "pause_after": 200, "pause_ms": 120000}),
        &img,
        json!({}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let pid = child.id();
    wait_for("a committed state", Duration::from_secs(60), || {
        cursor(&state, "items").filter(|c| *c == 200)
    });
    child.kill().unwrap(); // SIGKILL: sluice cannot clean up.
    child.wait().unwrap();
    let committed = cursor(&state, "items").unwrap();
    assert_eq!(committed, 200, "only a checkpoint is committed");
    let left = containers_of(pid, &[]);
    assert_eq!(
        left.len(),
        2,
        "the source and the destination are left behind"
    );
    assert!(
        !containers_of(pid, &["label=sluice.command=read", "status=running"]).is_empty(),
        "the slow source still runs"
    );

    let sweep = s.run(&["system", "sweep", "--output", "json"]);
    sweep.expect_code(0);
    let report = sweep.json();
    let removed: Vec<&Value> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pid"] == pid)
        .collect();
    assert_eq!(removed.len(), 2, "{report}");
    for c in &removed {
        assert_eq!(c["reason"], format!("its sluice (pid {pid}) is gone"));
        assert!(c["job"].as_str().unwrap().starts_with("inline-"));
    }
    assert!(containers_of(pid, &[]).is_empty(), "nothing is left");
    // The state file holds exactly what was committed.
    assert_eq!(cursor(&state, "items"), Some(committed));

    let table = s.run(&["system", "sweep"]);
    table.expect_code(0);
    assert!(
        table.stderr().contains("Removed 0 container(s)"),
        "{}",
        table.stderr()
    );
}

#[test]
fn ctrl_c_stops_and_removes_the_containers() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let state = s.path("state.json");
    let child = slow_sync(&s, b, &state);
    let pid = child.id();
    wait_for("a committed state", Duration::from_secs(60), || {
        cursor(&state, "items").filter(|c| *c >= 40)
    });
    // SAFETY: signals the child this test started and has not reaped.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "cancelled");
    assert!(
        containers_of(pid, &[]).is_empty(),
        "every container is removed"
    );
    assert_eq!(
        summary["records_committed"],
        cursor(&state, "items").unwrap()
    );
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_still_removes_the_containers() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let state = s.path("state.json");
    let img = b.docker("plain");
    // The destination goes quiet after 100 records: the grace period the
    // first Ctrl-C gives it would last.
    let child = spawn_sync(
        &s,
        &img,
        json!({"count": 100000, "checkpoint_every": 20, "delay_ms": 1}),
        &img,
        json!({"pause_after": 100, "pause_ms": 120000}),
        &[
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let pid = child.id();
    wait_for("both containers", Duration::from_secs(60), || {
        (containers_of(pid, &["label=sluice.command=read", "status=running"]).len()
            + containers_of(pid, &["label=sluice.command=write", "status=running"]).len()
            == 2)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..2 {
        // SAFETY: signals the child this test started and has not reaped.
        unsafe {
            libc::kill(pid as i32, libc::SIGINT);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        containers_of(pid, &[]).is_empty(),
        "every container is removed"
    );
}

#[test]
fn networks_are_joined_by_name() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let img = b.docker("plain");
    let network = format!("sluice-test-{}", std::process::id());
    docker(&["network", "create", &network]);
    let run = sync(
        &s,
        &img,
        json!({"count": 10}),
        &img,
        json!({}),
        &["--network", &network],
    );
    docker(&["network", "rm", &network]);
    run.expect_code(0);
    assert_eq!(run.json()["records"], 10);

    let missing = s.run(&[
        "connector",
        "check",
        &img,
        "--config",
        "{}",
        "--network",
        "sluice-no-such-network",
    ]);
    missing.expect_code(2);
    let err = missing.stderr();
    assert!(
        err.contains("network sluice-no-such-network not found"),
        "{err}"
    );
    assert!(
        err.contains("hint: create it with `docker network create NAME`"),
        "{err}"
    );
}

#[test]
fn a_missing_image_is_refused_under_pull_never() {
    let Some(_) = built() else { return };
    let s = Sandbox::new();
    let r = s.run(&[
        "connector",
        "spec",
        "docker:sluice-test-connector:not-built",
        "--pull",
        "never",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr()
            .contains("the image sluice-test-connector:not-built is not on the Docker engine"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr()
            .contains("hint: pull it with `sluice connector pull"),
        "{}",
        r.stderr()
    );
    // Pulls go to the image's registry: here one on loopback that refuses.
    let unreachable = "docker:127.0.0.1:9/sluice/nothing:1.0";
    for args in [
        vec!["connector", "pull", unreachable],
        vec!["connector", "spec", unreachable, "--pull", "always"],
        vec!["connector", "spec", unreachable],
    ] {
        let r = s.run(&args);
        r.expect_code(1);
        assert!(
            r.stderr()
                .contains("cannot pull the image 127.0.0.1:9/sluice/nothing:1.0: "),
            "{}",
            r.stderr()
        );
    }
    // Only images are pulled.
    let r = s.run(&["connector", "pull", "sample"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("is not a Docker image"),
        "{}",
        r.stderr()
    );
}

#[test]
fn the_same_connector_runs_as_a_process_and_as_a_container() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let exec = format!("exec:{}", b.binary.display());
    let docker_ref = b.docker("plain");
    let config =
        json!({"count": 5000, "streams": ["a", "b"], "checkpoint_every": 1000, "record_size": 100});
    let by_exec = sync(&s, &exec, config.clone(), &exec, json!({}), &[]);
    let by_docker = sync(&s, &docker_ref, config.clone(), &docker_ref, json!({}), &[]);
    by_exec.expect_code(0);
    by_docker.expect_code(0);
    let (e, d) = (by_exec.json(), by_docker.json());
    assert_eq!(records_by_stream(&e), records_by_stream(&d));
    assert_eq!(e["bytes"], d["bytes"]);
    assert_eq!(d["records_committed"], 10000);
}

/// Needs no engine: the error says there is none, before anything runs.
#[test]
fn no_engine_is_a_usage_error_that_says_what_to_do() {
    let s = Sandbox::new();
    let r = Run(s
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "sync",
            "--source",
            "docker:airbyte/source-faker:6.2.1",
            "--destination",
            "devnull",
        ])
        .output()
        .unwrap());
    r.expect_code(2);
    let err = r.stderr();
    assert!(
        err.starts_with("error: no Docker engine answers at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    assert!(err.contains("\n\nhint: start Docker"), "{err}");
    // Nothing else ran first: not even the other side's spec.
    let source = s.script("source", "touch \"$(dirname \"$0\")/ran\"; exit 1");
    let r = Run(s
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "sync",
            "--source",
            &source,
            "--destination",
            "docker:airbyte/destination-duckdb:0.4.0",
        ])
        .output()
        .unwrap());
    r.expect_code(2);
    assert!(
        r.stderr().contains("no Docker engine answers"),
        "{}",
        r.stderr()
    );
    assert!(
        !s.path("ran").exists(),
        "the source ran before the engine was checked"
    );
    let r = Run(s
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["system", "sweep"])
        .output()
        .unwrap());
    r.expect_code(2);
    assert!(
        r.stderr().contains("no Docker engine answers"),
        "{}",
        r.stderr()
    );
    let r = s.run(&["connector", "spec", "docker:airbyte/source-faker"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("the image has no tag"),
        "{}",
        r.stderr()
    );
}

/// The engine's attach connections, what an engine elsewhere gets, carry
/// the same data as the named pipes.
#[test]
fn the_attach_transport_moves_the_same_data() {
    let Some(b) = built() else { return };
    let s = Sandbox::new();
    let img = b.docker("plain");
    let out = s.path("out");
    let state = s.path("state.json");
    let (sc, dc) = (
        json!({"count": 3000, "streams": ["a", "b"], "checkpoint_every": 500, "record_size": 200})
            .to_string(),
        json!({"output_dir": "/local/x"}).to_string(),
    );
    let run = Run(s
        .cmd()
        .env("SLUICE_DOCKER_TRANSPORT", "attach")
        .args([
            "sync",
            "-o",
            "json",
            "--source",
            &img,
            "--source-config",
            &sc,
            "--destination",
            &img,
            "--destination-config",
            &dc,
            "--sync-mode",
            "incremental",
            "--state",
            state.to_str().unwrap(),
            "--local-root",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["records_committed"], 6000);
    for stream in ["a", "b"] {
        assert_eq!(
            ids(&out.join(format!("x/{stream}.jsonl"))),
            (1..=3000).collect::<Vec<_>>()
        );
        assert_eq!(cursor(&state, stream), Some(3000));
    }
}
