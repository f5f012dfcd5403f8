//! Managed sources, destinations, connections, jobs and state, through the
//! binary, on both job stores: each story module runs its tests twice,
//! `sqlite::NAME` on the SQLite file in the sandbox's data dir and
//! `postgres::NAME` on a database of its own on the test server (skipped
//! outside CI when it is missing, failed under CI). This module holds what
//! they share: the `Env` a test runs in, the macro that runs it on both
//! backends, and a scripted source with a connection to a jsonl
//! destination.

use crate::common::{PgDatabase, Run, Sandbox};
use serde_json::Value;
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

/// `sqlite::NAME` and `postgres::NAME` running `NAME(&Env)`, inside the
/// story module that invokes it (which imports `Env`).
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

// Declared after `both_backends!`, which they use.
mod actors;
mod apply;
mod ids;
mod jobs;
mod queue;
mod schema;
mod state;
mod store;
mod tables;

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
    setup_actors(
        env,
        source_ref,
        &format!(r#"{{"token": "{SECRET}", "n": 1}}"#),
    );
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

/// A source `src` of `source_ref` with `config`, and a jsonl destination
/// `dst` into `out/`.
fn setup_actors(env: &Env, source_ref: &str, config: &str) {
    let s = &env.sandbox;
    env.ok(&[
        "source",
        "create",
        "src",
        "--connector",
        source_ref,
        "--config",
        config,
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
}
