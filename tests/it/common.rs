//! What every integration test needs: the binary in a sandbox of its own,
//! protocol connectors written as small scripts, and services that must be
//! there under CI.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory with its own data dir, so tests never share state.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// `sluice` with this sandbox's data dir and no colours or progress.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.env("SLUICE_DATA_DIR", self.data_dir())
            .env_remove("SLUICE_CONNECTORS_DIR")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        if let Some(dir) = shared_connectors_dir() {
            cmd.env("SLUICE_CONNECTORS_DIR", dir);
        }
        cmd
    }

    /// Runs `sluice ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd().args(args).output().expect("run sluice"))
    }

    /// `sluice -o json connector COMMAND CONNECTOR --config CONFIG`.
    pub fn connector(&self, command: &str, connector: &str, config: &str) -> Run {
        self.run(&[
            "-o",
            "json",
            "connector",
            command,
            connector,
            "--config",
            config,
        ])
    }

    /// Writes an executable `/bin/sh` script and returns its `exec:` reference.
    pub fn script(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        format!("exec:{}", path.display())
    }

    /// `sluice -o json sync` from `source` to `destination` (configs as JSON
    /// text, `extra` flags after), which must succeed; its JSON summary.
    #[track_caller]
    pub fn sync(
        &self,
        (source, source_config): (&str, &str),
        (destination, destination_config): (&str, &str),
        extra: &[&str],
    ) -> Value {
        let mut args = vec!["-o", "json", "sync", "--source", source];
        args.extend([
            "--source-config",
            source_config,
            "--destination",
            destination,
        ]);
        args.extend(["--destination-config", destination_config]);
        args.extend(extra);
        let run = self.run(&args);
        run.expect_code(0);
        run.json()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

/// A configured catalog of every stream `connector discover SOURCE` finds,
/// read in full and written with `destination_sync_mode`, as a file in the
/// sandbox; its path.
pub fn configured_catalog(
    sandbox: &Sandbox,
    (source, config): (&str, &str),
    destination_sync_mode: &str,
) -> PathBuf {
    let run = sandbox.run(&[
        "-o",
        "json",
        "connector",
        "discover",
        source,
        "--config",
        config,
    ]);
    run.expect_code(0);
    let streams: Vec<Value> = run.catalog()["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            serde_json::json!({"stream": s, "sync_mode": "full_refresh",
                "destination_sync_mode": destination_sync_mode})
        })
        .collect();
    sandbox.write(
        "catalog.json",
        &serde_json::json!({ "streams": streams }).to_string(),
    )
}

/// Sends `signal` (`-INT`, `-TERM`) to the process `pid` with kill(1).
#[track_caller]
pub fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Runs `cmd` to the end, or kills it and fails the test when it has not
/// ended after `limit`: for the runs whose failure mode is a hang.
#[track_caller]
pub fn run_within(mut cmd: Command, limit: std::time::Duration) -> Run {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => Run(output.expect("wait for sluice")),
        Err(_) => {
            send_signal(pid, "-KILL");
            panic!("sluice was still running after {limit:?}: it hangs");
        }
    }
}

/// The names of the entries of a directory, hidden ones too, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A finished `sluice` run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// stdout as the one JSON document `--output json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }

    /// stdout as JSON lines (`--output json` of `sluice connector ...`).
    pub fn messages(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The CONNECTION_STATUS of `connector check --output json`.
    pub fn connection_status(&self) -> Value {
        let status = self
            .messages()
            .into_iter()
            .find(|m| m["type"] == "CONNECTION_STATUS");
        status.unwrap_or_else(|| panic!("no CONNECTION_STATUS in:\n{}", self.stdout()))
            ["connectionStatus"]
            .clone()
    }

    /// The CATALOG message among the messages on stdout.
    pub fn catalog(&self) -> Value {
        let catalog = self.messages().into_iter().find(|m| m["type"] == "CATALOG");
        catalog.unwrap_or_else(|| panic!("no CATALOG in:\n{}", self.stdout()))["catalog"].clone()
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Records per stream of a sync's JSON summary, as `name -> records`.
pub fn records_by_stream(summary: &Value) -> std::collections::BTreeMap<String, u64> {
    summary["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_string(),
                s["records"].as_u64().expect("records"),
            )
        })
        .collect()
}

/// The JSON values of a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Whether this run must fail rather than skip when a service is missing.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the test (returns false) outside CI when `what` is missing, with a
/// loud message; fails it under CI.
pub fn require(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    if under_ci() {
        panic!("{what} is missing, and CI=true: run the tests with scripts/test");
    }
    eprintln!("\n*** SKIPPED: {what} is missing; run scripts/test to set it up ***\n");
    false
}

/// Where installed Python connectors are kept across tests and runs, so each
/// test does not install them again (`scripts/test` sets it; installs are
/// locked, so tests running at once share them safely).
pub fn shared_connectors_dir() -> Option<PathBuf> {
    Some(
        std::env::var_os("SLUICE_TEST_CONNECTORS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("connectors")),
    )
}

/// The PostgreSQL server the tests use: `SLUICE_TEST_DATABASE_URL`, else the
/// `sluice` role `scripts/test` creates.
pub fn postgres_admin_url() -> String {
    std::env::var("SLUICE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://sluice:sluice@localhost:5432/postgres".into())
}

/// A database of this test's own on the test server, dropped at the end.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates a fresh database; `None` (the test skips) outside CI when the
    /// server cannot be reached, a failure under CI.
    pub fn create() -> Option<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = postgres_admin_url();
        let up = psql(&admin, "SELECT 1").is_ok();
        if !require(up, &format!("PostgreSQL at {admin}")) {
            return None;
        }
        let name = format!(
            "sluice_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin, &format!("CREATE DATABASE {name}")).expect("create a test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Runs SQL in this database with `psql`; its unaligned, tuples-only output.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &postgres_admin_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `psql URL -c SQL` (unaligned, tuples only, stop on error): stdout, or
/// stderr as the error.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
