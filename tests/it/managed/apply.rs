//! `apply` and `export`: a YAML file of sources, destinations and
//! connections applied (dry run, variables, `--prune`), and an export that
//! applies back to the same YAML without its secrets (or gives it as JSON).

use super::{echo_lines, record, script_source, state, Env, SECRET};
use crate::common::Run;
use serde_json::json;

both_backends!(
    apply_and_export_round_trip,
    a_setup_that_fails_anywhere_changes_nothing
);

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
    // `-o json` is the same setup as JSON; YAML stays the default.
    let as_json = env.json(&["export"]);
    let as_yaml: serde_json::Value = serde_norway::from_str(&first).expect("the export is YAML");
    assert_eq!(as_json, as_yaml);
    assert_eq!(
        as_json["sources"]["scripted"]["config"]["token"],
        "**********"
    );
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
    // The masked secret has no stored value to keep: refused, naming the
    // field, and nothing of the file applied (all or nothing).
    let refused = env.run(&["apply", "-f", exported.to_str().unwrap()]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains(
            "source `scripted` gives /token as `**********`, and there is no stored secret to keep"
        ),
        "{}",
        refused.stderr()
    );
    assert_eq!(env.json(&["source", "list"]), json!([]));
    assert_eq!(env.json(&["destination", "list"]), json!([]));
    // With the secret from the environment, the export applies whole.
    let with_var = s.write(
        "with-var.yaml",
        &first.replace("'**********'", "${SLUICE_TEST_TOKEN}"),
    );
    apply(&["apply", "-f", with_var.to_str().unwrap()]).expect_code(0);
    assert_eq!(
        env.json(&["source", "get", "scripted", "--show-secrets"])["config"]["token"],
        SECRET
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

/// Everything is checked before anything is written: a connection that
/// cannot be built (a stream the source does not have) leaves the store
/// as it was, sources and destinations included; `--dry-run` finds it too.
fn a_setup_that_fails_anywhere_changes_nothing(env: &Env) {
    let s = &env.sandbox;
    let yaml = format!(
        "sources:\n  gen:\n    connector: sample\ndestinations:\n  local:\n    connector: jsonl\n    config:\n      path: {}\nconnections:\n  c:\n    source: gen\n    destination: local\n    streams: [nope]\n",
        s.path("out").display()
    );
    let file = s.write("bad.yaml", &yaml);
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec!["apply", "-f", file.to_str().unwrap()];
        args.extend(extra);
        let run = env.run(&args);
        run.expect_code(2);
        assert!(
            run.stderr()
                .contains("connection `c`: the source has no stream `nope`"),
            "{}",
            run.stderr()
        );
    }
    assert_eq!(env.json(&["source", "list"]), json!([]));
    assert_eq!(env.json(&["destination", "list"]), json!([]));
    assert_eq!(env.json(&["connection", "list"]), json!([]));
}
