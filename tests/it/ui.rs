//! The web UI: its committed bundle is built from its sources, a daemon
//! serves it at `/` with its security headers and signs browsers in with a
//! cookie, and the scripts in tests/browser drive it in headless Chromium
//! (Debian's `chromium`, which scripts/test installs with their npm
//! packages) against a real daemon and PostgreSQL.

use crate::common::{require, PgDatabase, Sandbox};
use crate::daemon::Daemon;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_committed_bundle_is_built_from_the_committed_sources() {
    // The same list and sums scripts/build-web writes, computed without Node.
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-web"))
        .arg("--hash")
        .output()
        .expect("run scripts/build-web --hash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let built =
        std::fs::read_to_string(repo().join("web/dist/SOURCE_HASH")).expect("web/dist/SOURCE_HASH");
    assert_eq!(
        built.trim(),
        now,
        "web/dist is stale: run scripts/build-web and commit web/dist"
    );
}

/// A daemon on TCP, its base URL and token.
fn daemon(sandbox: &Sandbox) -> (Daemon, String, String) {
    let daemon = Daemon::start(sandbox, true);
    let token = sandbox.run(&["daemon", "token"]);
    token.expect_code(0);
    let base = daemon.tcp().to_string();
    (daemon, base, token.stdout().trim().to_string())
}

/// `curl -s -i ARGS URL`: the status, the headers (lowercase) and the body.
fn curl(args: &[&str], url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-i"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

/// The daemon's version and the security headers, which every answer
/// carries, the token check's refusals too.
#[track_caller]
fn assert_common_headers(head: &str) {
    for line in [
        format!("sluice-version: {}", env!("CARGO_PKG_VERSION")),
        "x-content-type-options: nosniff".into(),
        "x-frame-options: deny".into(),
        "referrer-policy: no-referrer".into(),
    ] {
        assert!(head.contains(&line), "no `{line}`: {head}");
    }
}

#[test]
fn the_ui_is_served_without_the_token_and_the_api_only_with_it_or_a_session() {
    let sandbox = Sandbox::new();
    let (_daemon, base, token) = daemon(&sandbox);

    // The app, on any UI route, with a policy that allows no inline script.
    for path in ["/", "/connections/x/settings"] {
        let (status, head, body) = curl(&[], &format!("{base}{path}"));
        assert_eq!(status, 200, "{path}: {head}");
        assert!(
            head.contains("content-security-policy: default-src 'self'; script-src 'self';"),
            "{head}"
        );
        assert_common_headers(&head);
        assert!(
            body.contains(r#"<script type="module" src="/assets/app.js?v="#),
            "{body}"
        );
        assert!(!body.contains("<script>"), "an inline script: {body}");
    }
    let (status, head, _) = curl(
        &["-H", "Accept-Encoding: gzip"],
        &format!("{base}/assets/app.js"),
    );
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    // The API is not the UI's: no index.html for it, and no answer without
    // the token. The refusal carries the headers every answer does.
    let (status, head, body) = curl(&[], &format!("{base}/api/v1/connections"));
    assert_eq!(status, 401, "{body}");
    assert_common_headers(&head);

    // A session: signed in with the token, its cookie HttpOnly and strict.
    let body = format!(r#"{{"token": "{token}"}}"#);
    let (status, head, _) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
        ],
        &format!("{base}/api/v1/session"),
    );
    assert_eq!(status, 200, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .to_string();
    assert!(
        cookie.contains("; httponly; samesite=strict; path=/"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let (_, head, _) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"token": "nope"}"#,
        ],
        &format!("{base}/api/v1/session"),
    );
    assert!(head.starts_with("http/1.1 401"), "{head}");

    let with = |extra: &[&str], method: &str, path: &str| {
        let mut args = vec!["-X", method, "-b", &session];
        args.extend(extra);
        curl(&args, &format!("{base}/api/v1{path}")).0
    };
    assert_eq!(with(&[], "GET", "/connections"), 200);
    // A change by cookie alone is what a cross-site form could make: refused
    // without the header such a form cannot send. Forbidden, not 401: the
    // browser is signed in, and the answer says what is missing.
    let (status, head, body) = curl(
        &["-X", "DELETE", "-b", &session],
        &format!("{base}/api/v1/connections/none"),
    );
    assert_eq!(status, 403, "{body}");
    assert_common_headers(&head);
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["error"]["code"], "forbidden", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`X-Sluice-CSRF` header is missing"),
        "{body}"
    );
    assert_eq!(
        with(&["-H", "X-Sluice-CSRF: 1"], "DELETE", "/connections/none"),
        404
    );
    // Signed out, the cookie stands for nothing.
    assert_eq!(with(&[], "DELETE", "/session"), 200);
    assert_eq!(with(&[], "GET", "/connections"), 401);
}

#[test]
fn on_the_unix_socket_the_ui_and_api_need_no_sign_in_and_sluice_ui_names_the_tcp_address() {
    let sandbox = Sandbox::new();
    let socket_only = Daemon::start(&sandbox, false);
    let socket = sandbox.data_dir().join("daemon.sock");
    for path in ["/", "/api/v1/daemon"] {
        let (status, _, _) = curl(
            &["--unix-socket", socket.to_str().unwrap()],
            &format!("http://localhost{path}"),
        );
        assert_eq!(status, 200, "{path}");
    }
    // A browser cannot reach a socket: `sluice ui` says how to listen on TCP.
    let run = sandbox.run(&["ui"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--listen"), "{}", run.stderr());
    drop(socket_only);

    let (daemon, base, _) = self::daemon(&sandbox);
    let mut cmd = sandbox.cmd();
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .args(["-o", "json", "ui"]);
    let run = crate::common::Run(cmd.output().expect("run sluice"));
    run.expect_code(0);
    assert_eq!(run.json()["url"], format!("{base}/"));
    assert_eq!(run.json()["opened"], false);
    drop(daemon);
}

/// Node, Debian's Chromium and the browser scripts' npm packages, or the
/// test skips (fails under CI).
fn browser_ready() -> Option<PathBuf> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    let scripts = repo().join("tests/browser");
    let packages = scripts.join("node_modules/puppeteer-core").exists();
    let ready = require(node, "node")
        && require(chromium.exists(), "Chromium (Debian's `chromium`)")
        && require(packages, "tests/browser's npm packages (`npm ci` there)");
    ready.then_some(scripts)
}

/// Runs `node tests/browser/SCRIPT` with `env`; its output, or the test
/// fails with it.
fn node(scripts: &Path, script: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new("node")
        .arg(scripts.join(script))
        .envs(env.iter().copied())
        .current_dir(scripts)
        .output()
        .expect("run node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

#[test]
fn ui_flow_in_a_browser_from_a_source_form_to_a_failing_sync() {
    let Some(scripts) = browser_ready() else {
        return;
    };
    let Some(db) = PgDatabase::create() else {
        return;
    };
    db.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz DEFAULT now());
         INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE TABLE other (id int PRIMARY KEY)",
    );
    let sandbox = Sandbox::new();
    let (_daemon, base, token) = daemon(&sandbox);
    let out_dir = sandbox.path("out");
    let bad_dir = sandbox.path("will-be-a-file");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let output = node(
        &scripts,
        "flow.mjs",
        &[
            ("SLUICE_URL", &base),
            ("SLUICE_TOKEN", &token),
            ("PG_URL", &db.url),
            ("OUT_DIR", out_dir.to_str().unwrap()),
            ("BAD_DIR", bad_dir.to_str().unwrap()),
            ("ROWS", "3"),
        ],
    );
    assert!(output.contains("ok: "), "{output}");
    // What the UI did, the CLI sees.
    let jobs = sandbox.run(&["-o", "json", "job", "list"]);
    jobs.expect_code(0);
    let statuses: Vec<String> = jobs
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["failed", "succeeded"]);
}

#[test]
fn ui_lists_a_thousand_connections_in_a_browser() {
    let Some(scripts) = browser_ready() else {
        return;
    };
    let sandbox = Sandbox::new();
    let (_daemon, base, token) = daemon(&sandbox);
    let connections: serde_json::Map<String, serde_json::Value> = (0..1000)
        .map(|i| {
            let schedule = ["manual", "every:1h", "cron:0 */6 * * *"][i % 3];
            (
                format!("conn-{i:04}"),
                serde_json::json!({"source": "gen", "destination": "null", "schedule": schedule}),
            )
        })
        .collect();
    let setup = serde_json::json!({
        "sources": {"gen": {"connector": "sample"}},
        "destinations": {"null": {"connector": "devnull"}},
        "connections": connections,
    });
    let file = sandbox.write("setup.json", &setup.to_string());
    sandbox
        .run(&["-q", "apply", "-f", file.to_str().unwrap()])
        .expect_code(0);
    // A bound that catches a page gone quadratic on a busy machine; the
    // figures themselves are printed.
    let output = node(
        &scripts,
        "many.mjs",
        &[
            ("SLUICE_URL", &base),
            ("SLUICE_TOKEN", &token),
            ("ROWS", "1000"),
            ("LIMIT_MS", "5000"),
        ],
    );
    eprintln!("{output}");
}
