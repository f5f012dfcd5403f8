//! Against the real Airbyte connector `airbyte-source-faker` 7.2.1 from PyPI,
//! and Python installs that fail or are interrupted.

use crate::common::{dir_names, read_jsonl, records_by_stream, require, send_signal, Run, Sandbox};
use std::process::Command;

const FAKER: &str = "python:airbyte-source-faker==7.2.1";
const CONFIG: &str = r#"{"count": 100, "seed": 42, "always_updated": false}"#;

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn discover_lists_the_faker_streams() {
    if !require(python_available(), "python3 with venv") {
        return;
    }
    let sandbox = Sandbox::new();
    let run = sandbox.connector("discover", FAKER, CONFIG);
    run.expect_code(0);
    let catalog = run.catalog();
    let mut names: Vec<&str> = catalog["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["products", "purchases", "users"]);
    for stream in catalog["streams"].as_array().unwrap() {
        let modes = stream["supported_sync_modes"].to_string();
        assert!(modes.contains("incremental"), "{stream}");
    }
}

#[test]
fn full_refresh_then_incremental_with_state() {
    if !require(python_available(), "python3 with venv") {
        return;
    }
    let sandbox = Sandbox::new();
    let sync = |out: &std::path::Path, mode: &str, state: Option<&str>| {
        let dest = format!(r#"{{"path": "{}"}}"#, out.display());
        let mut extra = vec!["--sync-mode", mode];
        if let Some(s) = state {
            extra.extend(["--state", s]);
        }
        sandbox.sync((FAKER, CONFIG), ("jsonl", &dest), &extra)
    };

    // Full refresh: exact per-stream counts for count=100, seed=42.
    let out = sandbox.path("full");
    let summary = sync(&out, "full-refresh", None);
    assert_eq!(summary["status"], "succeeded");
    let counts = records_by_stream(&summary);
    let want: std::collections::BTreeMap<String, u64> =
        [("products", 100), ("purchases", 100), ("users", 100)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(counts, want);
    for (stream, n) in &want {
        let rows = read_jsonl(&out.join(format!("{stream}.jsonl")));
        assert_eq!(rows.len() as u64, *n, "{stream}.jsonl");
    }
    let users = read_jsonl(&out.join("users.jsonl"));
    let mut ids: Vec<i64> = users
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "user ids are distinct");

    // Incremental, first run: everything, and a state per stream committed.
    let state = sandbox.path("state.json");
    let state_arg = state.to_str().unwrap();
    let out = sandbox.path("incremental");
    let first = sync(&out, "incremental", Some(state_arg));
    assert_eq!(records_by_stream(&first), want);
    assert_eq!(first["state_committed"], true);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("JSON");
    let mut described: Vec<&str> = saved
        .as_array()
        .expect("a STREAM state file is an array")
        .iter()
        .map(|s| {
            assert_eq!(s["type"], "STREAM");
            s["stream"]["stream_descriptor"]["name"]
                .as_str()
                .expect("name")
        })
        .collect();
    described.sort();
    assert_eq!(described, ["products", "purchases", "users"]);
    assert_eq!(saved[1]["stream"]["stream_state"]["seed"], 42);

    // Second run from the saved state: with always_updated=false the
    // connector promises nothing new, and the destination keeps what it has.
    let second = sync(&out, "incremental", Some(state_arg));
    assert_eq!(second["records"], 0, "{second}");
    assert_eq!(second["status"], "succeeded");
    assert_eq!(
        read_jsonl(&out.join("users.jsonl")).len(),
        100,
        "appended nothing"
    );
    let resaved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("JSON");
    assert_eq!(resaved.as_array().map(Vec::len), Some(3));
}

/// `sluice ARGS` with a connectors directory of the sandbox's own, so that
/// installs start from nothing.
fn own_install(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sandbox.cmd();
    cmd.env("SLUICE_CONNECTORS_DIR", sandbox.path("connectors"))
        .args(args);
    cmd
}

#[test]
fn a_python_package_that_is_not_on_pypi_is_the_users_to_fix_and_leaves_nothing() {
    if !require(python_available(), "python3 with venv") {
        return;
    }
    let sandbox = Sandbox::new();
    let missing = "python:airbyte-source-does-not-exist==1.0.0";
    // Twice: the second attempt finds nothing of the first.
    for _ in 0..2 {
        let run = Run(own_install(&sandbox, &["connector", "install", missing])
            .output()
            .unwrap());
        run.expect_code(2);
        let stderr = run.stderr();
        assert!(
            stderr.contains(
                "error: python:airbyte-source-does-not-exist==1.0.0: pip found no \
                 airbyte-source-does-not-exist==1.0.0 to install (Could not find a version \
                 that satisfies the requirement airbyte-source-does-not-exist==1.0.0"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "hint: check the package name and version \
                 (https://pypi.org/project/airbyte-source-does-not-exist/ lists its versions)"
            ),
            "{stderr}"
        );
        assert_eq!(
            dir_names(&sandbox.path("connectors/python")),
            [".airbyte-source-does-not-exist-1.0.0.lock"],
            "no virtualenv is left"
        );
    }
}

#[test]
fn an_interrupted_python_install_leaves_nothing_and_the_next_installs_cleanly() {
    if !require(python_available(), "python3 with venv") {
        return;
    }
    let sandbox = Sandbox::new();
    let mut child = own_install(&sandbox, &["connector", "install", FAKER])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(stderr) {
        let line = line.unwrap();
        let pip_runs = line.starts_with("Installing airbyte-source-faker==7.2.1 from PyPI");
        seen.push(line);
        if pip_runs {
            break;
        }
    }
    assert!(
        sandbox
            .path("connectors/python/airbyte-source-faker-7.2.1/bin")
            .exists(),
        "{seen:?}"
    );
    // pip is resolving and downloading: Ctrl-C.
    std::thread::sleep(std::time::Duration::from_secs(1));
    send_signal(child.id(), "-INT");
    assert_eq!(child.wait().unwrap().code(), Some(130), "{seen:?}");
    for _ in 0..2 {
        // Nothing is left, and pip does not write it back afterwards.
        assert_eq!(
            dir_names(&sandbox.path("connectors/python")),
            [".airbyte-source-faker-7.2.1.lock"]
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    let run = Run(own_install(&sandbox, &["connector", "install", FAKER])
        .output()
        .unwrap());
    run.expect_code(0);
    let spec = Run(
        own_install(&sandbox, &["-o", "json", "connector", "spec", FAKER])
            .output()
            .unwrap(),
    );
    spec.expect_code(0);
    assert_eq!(spec.messages()[0]["type"], "SPEC");
}
