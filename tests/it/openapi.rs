//! The daemon's OpenAPI document: it names every route of the router,
//! it is a valid OpenAPI 3.1 document, every route it names answers, and
//! schemathesis, fuzzing the API from it, finds no server error and no
//! answer that differs from its schema.

use crate::common::{require, under_ci, Sandbox};
use crate::daemon::Daemon;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A daemon on TCP with its token, asked with curl.
struct Client {
    _daemon: Daemon,
    base: String,
    token: String,
}

impl Client {
    fn start(sandbox: &Sandbox) -> Client {
        let daemon = Daemon::start(sandbox, true);
        let token = sandbox.run(&["daemon", "token"]);
        token.expect_code(0);
        Client {
            base: daemon.tcp().to_string(),
            token: token.stdout().trim().to_string(),
            _daemon: daemon,
        }
    }

    /// `METHOD PATH` with a JSON body; the status and the body read as
    /// JSON (or as a string when it is not).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H"])
            .arg(format!("Authorization: Bearer {}", self.token));
        if let Some(body) = body {
            cmd.args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                body,
            ]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').expect("a status");
        (
            code.parse().expect("a status"),
            serde_json::from_str(body).unwrap_or(Value::String(body.into())),
        )
    }

    fn document(&self) -> Value {
        let (code, doc) = self.call("GET", "/api/v1/openapi.json", None);
        assert_eq!(code, 200, "{doc}");
        doc
    }
}

/// `METHOD /path` of every route `routes()` in src/daemon/server.rs
/// declares, read from its source: a route added there and not to the
/// document fails the test below.
fn router_routes() -> BTreeSet<String> {
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/daemon/server.rs"),
    )
    .expect("read server.rs");
    let start = source.find("fn routes(").expect("a routes()");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("routes()'s end")];
    // The routes of the `api` router are nested under a prefix.
    let (api, outer) = body.split_at(body.find(";\n").expect("the api router's end"));
    let nest = outer
        .split_once(".nest(\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(prefix, _)| prefix)
        .expect("the api router nested");
    let mut routes = BTreeSet::new();
    for (prefix, block) in [(nest, api), ("", outer)] {
        for route in block.split(".route(").skip(1) {
            let path = route
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("a route's path: {route}"));
            // Its methods: `get(...)`, `.post(...)` up to the route's end.
            let mut depth = 1;
            let end = route
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or(route.len());
            let chain = &route[..end];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = chain.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !chain[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    routes.insert(format!("{} {prefix}{path}", method.to_uppercase()));
                }
            }
        }
    }
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

/// Every `$ref` in `v`, resolved in `doc`, or the ones that do not.
fn unresolved_refs(doc: &Value, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let found = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                        if found.is_none() {
                            out.push(r.clone());
                        }
                    }
                    _ => unresolved_refs(doc, v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| unresolved_refs(doc, v, out)),
        _ => {}
    }
}

/// The virtualenv scripts/test installs schemathesis and
/// openapi-spec-validator in.
fn tools_venv() -> PathBuf {
    std::env::var_os("SLUICE_TEST_OPENAPI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("target/")
                .join("schemathesis")
        })
}

#[test]
fn the_document_names_every_route_and_is_valid_openapi_3_1() {
    let sandbox = Sandbox::new();
    let client = Client::start(&sandbox);
    let doc = client.document();

    let router = router_routes();
    assert!(router.len() > 30, "{router:?}");
    let documented = documented_routes(&doc);
    let missing: Vec<_> = router.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&router).collect();
    assert!(
        stale.is_empty(),
        "documented routes the router lacks: {stale:?}"
    );

    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut unresolved = Vec::new();
    unresolved_refs(&doc, &doc, &mut unresolved);
    assert!(unresolved.is_empty(), "{unresolved:?}");
    // Every operation says what its errors look like, and each long one
    // its JSON lines.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in ["4XX", "5XX"] {
                assert!(
                    op["responses"][status]["content"]["application/json"]["schema"].is_object(),
                    "{method} {path} {status}"
                );
            }
            // Answers are JSON, but for the metrics' own text format.
            let answer = if path == "/metrics" {
                "application/openmetrics-text"
            } else {
                "application/json"
            };
            assert!(
                op["responses"]["200"]["content"][answer]["schema"].is_object(),
                "{method} {path} 200"
            );
        }
    }
    let streamed = &doc["paths"]["/api/v1/sync"]["post"]["responses"]["200"]["content"]
        ["application/x-ndjson"]["schema"]["$ref"];
    assert_eq!(streamed, "#/components/schemas/RunLine_SyncAnswer");

    // The validator from PyPI, when scripts/test installed it.
    let python = tools_venv().join("bin/python");
    if require(
        python.exists(),
        "openapi-spec-validator (scripts/test installs it)",
    ) {
        let file = sandbox.write("openapi.json", &doc.to_string());
        let out = Command::new(&python)
            .args(["-m", "openapi_spec_validator"])
            .arg(&file)
            .output()
            .expect("run openapi-spec-validator");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The smallest body each route takes (`{}` when not named here), in the
/// order they are called: what is created first, what is deleted last.
/// What a route's path names (a kind, a name) the body leaves out.
const CALLS: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/sources",
        r#"{"name": "src", "connector": "sample"}"#,
    ),
    (
        "POST",
        "/api/v1/destinations",
        r#"{"name": "dst", "connector": "devnull"}"#,
    ),
    (
        "POST",
        "/api/v1/connections",
        r#"{"name": "c1", "spec": {"source": "src", "destination": "dst"}}"#,
    ),
    (
        "POST",
        "/api/v1/connections/{name}/jobs",
        r#"{"connection": "c1", "kind": "sync"}"#,
    ),
    (
        "POST",
        "/api/v1/sync",
        r#"{"source": "sample", "destination": "devnull", "max_line_bytes": 1048576}"#,
    ),
    (
        "POST",
        "/api/v1/connectors/{verb}",
        r#"{"connector": "sample"}"#,
    ),
    ("PATCH", "/api/v1/sources/{name}", r#"{"check": false}"#),
    (
        "PATCH",
        "/api/v1/destinations/{name}",
        r#"{"check": false}"#,
    ),
    (
        "PATCH",
        "/api/v1/connections/{name}",
        r#"{"name": "c1", "patch": {}}"#,
    ),
    ("POST", "/api/v1/apply", r#"{"setup": {}, "dry_run": true}"#),
    ("POST", "/api/v1/session", r#"{"token": "{token}"}"#),
    (
        "PUT",
        "/api/v1/connections/{name}/state",
        r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {}}}]"#,
    ),
    ("DELETE", "/api/v1/connections/{name}/state", "{}"),
    ("DELETE", "/api/v1/connections/{name}", ""),
    ("DELETE", "/api/v1/sources/{name}", ""),
    ("DELETE", "/api/v1/destinations/{name}", ""),
];

/// A documented path with its parameters filled in for the test's setup.
fn concrete(path: &str) -> String {
    let name = if path.starts_with("/api/v1/sources") {
        "src"
    } else if path.starts_with("/api/v1/destinations") {
        "dst"
    } else {
        "c1"
    };
    let id = if path.starts_with("/api/v1/runs") {
        "no-such-run"
    } else {
        "1"
    };
    path.replace("{name}", name)
        .replace("{id}", id)
        .replace("{verb}", "spec")
}

#[test]
fn every_documented_route_answers_minimal_input() {
    let sandbox = Sandbox::new();
    let client = Client::start(&sandbox);
    let doc = client.document();
    let documented = documented_routes(&doc);
    // The routes of CALLS in their order, the others between creating and
    // deleting.
    let first = CALLS
        .iter()
        .take_while(|(m, _, _)| *m != "DELETE" && *m != "PUT");
    let last = CALLS.iter().skip(first.clone().count());
    let named: BTreeSet<String> = CALLS.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    let mut order: Vec<(String, String, String)> = first
        .map(|(m, p, b)| (m.to_string(), p.to_string(), b.to_string()))
        .collect();
    for route in documented.difference(&named) {
        let (m, p) = route.split_once(' ').unwrap();
        let body = if m == "GET" { "" } else { "{}" };
        order.push((m.into(), p.into(), body.into()));
    }
    order.extend(last.map(|(m, p, b)| (m.to_string(), p.to_string(), b.to_string())));
    for (method, path, _) in &order {
        assert!(
            documented.contains(&format!("{method} {path}")),
            "{method} {path} is not documented"
        );
    }

    // A route asked with a method it does not take answers the API's
    // error too, as the document's 4XX says.
    let (code, answer) = client.call("PUT", "/api/v1/jobs", Some("{}"));
    assert_eq!(code, 405, "{answer}");
    assert!(answer["error"]["message"].is_string(), "{answer}");

    for (method, path, body) in order {
        let url = concrete(&path);
        let body = body.replace("{token}", &client.token);
        let (code, answer) =
            client.call(&method, &url, (!body.is_empty()).then_some(body.as_str()));
        assert!(code < 500, "{method} {url}: {code} {answer}");
        assert_ne!(code, 405, "{method} {url}: {answer}");
        assert_ne!(
            answer["error"]["message"], "no such route",
            "{method} {url}: {code}"
        );
        if path.starts_with("/api/v1/runs/") {
            assert_eq!(code, 404, "{method} {url}: {answer}");
        } else if path.ends_with("/cancel") {
            // The job has ended: a conflict that names how it ended.
            assert_eq!(code, 409, "{method} {url}: {answer}");
        } else {
            assert_eq!(code, 200, "{method} {url}: {answer}");
        }
    }
}

/// Fuzzes the API from its document: no 5xx, and every answer fits its
/// schema. Bounded in examples and time; with its seed fixed, a failure
/// comes back on the next run.
#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_its_schema() {
    let schemathesis = tools_venv().join("bin/schemathesis");
    if !require(
        schemathesis.exists(),
        "schemathesis (scripts/test installs it)",
    ) {
        return;
    }
    let sandbox = Sandbox::new();
    let client = Client::start(&sandbox);
    let run = || {
        let started = Instant::now();
        let out = Command::new(&schemathesis)
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", client.base))
            .args([
                "--header",
                &format!("Authorization: Bearer {}", client.token),
            ])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", "8", "--max-time", "40", "--seed", "1"])
            .args(["--workers", "2", "--no-shrink", "--request-timeout", "20"])
            .arg("--report-dir")
            .arg(sandbox.path("schemathesis-report"))
            .current_dir(sandbox.dir.path())
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr, started.elapsed())
    };
    let (mut ok, mut stdout, mut stderr, mut took) = run();
    // The fuzzer's own crash while it makes up a request (Hypothesis in
    // CPython 3.11 can trip over "AST constructor recursion depth
    // mismatch") says nothing of the server: once, it is run again. A
    // failed check, or a crash twice, fails the test.
    let tool_crash = |out: &str| {
        // The closing line counts what went wrong: "1 error, 3 warnings
        // in 40.03s"; a failed check would be "1 failure, ...".
        let last = out
            .lines()
            .rfind(|l| l.starts_with("===") && l.contains(" in "))
            .unwrap_or_default();
        out.contains("Runtime Error") && last.contains("error") && !last.contains("fail")
    };
    if !ok && tool_crash(&stdout) {
        eprintln!("schemathesis itself crashed; running it again:\n{stdout}");
        (ok, stdout, stderr, took) = run();
    }
    assert!(ok, "schemathesis failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("passed"), "{stdout}");
    eprintln!("schemathesis took {took:?}");
    if under_ci() {
        assert!(took < Duration::from_secs(90), "{took:?}\n{stdout}");
    }
}
