//! The engine's guarantees, with protocol connectors written as scripts
//! that misbehave on purpose: garbage, crashes, errors, lost acknowledgements,
//! Ctrl-C, overlong lines, secrets.

use crate::common::{dir_names, read_jsonl, run_within, send_signal, Run, Sandbox};
use serde_json::Value;
use std::time::Duration;

const SPEC: &str = r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object","properties":{"token":{"type":"string","airbyte_secret":true},"n":{"type":"integer"}}}}}"#;
const CATALOG: &str = r#"{"type":"CATALOG","catalog":{"streams":[{"name":"s","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true}]}}"#;

fn record(x: u32) -> String {
    format!(r#"{{"type":"RECORD","record":{{"stream":"s","data":{{"x":{x}}},"emitted_at":1}}}}"#)
}

fn state(c: u32) -> String {
    format!(
        r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"s"}},"stream_state":{{"c":{c}}}}}}}}}"#
    )
}

/// A source whose `read` runs `read` (shell), answering spec and discover.
fn source(sandbox: &Sandbox, read: &str) -> String {
    sandbox.script(
        "source",
        &format!("case \"$1\" in\n  spec) echo '{SPEC}' ;;\n  discover) echo '{CATALOG}' ;;\n  read)\n{read}\n  ;;\nesac"),
    )
}

/// A destination whose `write` runs `write` (shell).
fn destination(sandbox: &Sandbox, write: &str) -> String {
    sandbox.script(
        "destination",
        &format!("case \"$1\" in\n  spec) echo '{SPEC}' ;;\n  write)\n{write}\n  ;;\nesac"),
    )
}

/// Lines echoed by the shell, each quoted.
fn echo_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("echo '{l}'"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `sluice -o json sync` incremental with a state file; the run and the
/// state file's content, if any.
fn sync(
    sandbox: &Sandbox,
    source: &str,
    destination: &str,
    extra: &[&str],
) -> (Run, Option<Value>) {
    let state = sandbox.path("state.json");
    let mut args = vec![
        "-o",
        "json",
        "sync",
        "--source",
        source,
        "--destination",
        destination,
    ];
    args.extend([
        "--sync-mode",
        "incremental",
        "--state",
        state.to_str().unwrap(),
    ]);
    args.extend(extra);
    let run = sandbox.run(&args);
    let saved = std::fs::read(&state)
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("the state file is JSON"));
    (run, saved)
}

fn jsonl(sandbox: &Sandbox) -> String {
    format!(r#"{{"path": "{}"}}"#, sandbox.path("out").display())
}

fn saved_cursor(saved: &Option<Value>) -> Option<i64> {
    saved
        .as_ref()
        .map(|s| s[0]["stream"]["stream_state"]["c"].as_i64().expect("c"))
}

#[test]
fn garbage_lines_are_logged_and_skipped() {
    let sandbox = Sandbox::new();
    let lines = [
        record(1),
        "this is not json".to_string(),
        r#"{"type":"RECORD","record":{"stream":"s","data":{"x":1 2},"emitted_at":1}}"#.into(),
        "[1, 2, 3]".into(),
        r#"{"no_type": true}"#.into(),
        record(2),
        "{\"type\":\"RECORD\",\"record\":{\"stream\":\"s\",\"data\":{\"x\":\"\\q\"}}}".into(),
        state(2),
    ];
    let src = source(&sandbox, &echo_lines(&lines));
    let dest = format!("--destination-config={}", jsonl(&sandbox));
    let (run, saved) = sync(&sandbox, &src, "jsonl", &[&dest]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["records"], 2, "{summary}");
    assert_eq!(summary["lines_skipped"], 5, "{summary}");
    let rows = read_jsonl(&sandbox.path("out/s.jsonl"));
    assert_eq!(
        rows,
        vec![serde_json::json!({"x": 1}), serde_json::json!({"x": 2})]
    );
    assert_eq!(saved_cursor(&saved), Some(2));
    let log = std::fs::read_to_string(summary["log_file"].as_str().unwrap()).unwrap();
    assert!(log.contains("this is not json"), "{log}");
    assert!(log.contains(&src), "the log names the connector:\n{log}");
}

#[test]
fn a_source_crash_fails_the_sync_and_keeps_the_committed_state() {
    let sandbox = Sandbox::new();
    let read = format!(
        "{}\necho 'disk on fire' >&2\nexit 3",
        echo_lines(&[record(1), state(1), record(2), state(2), record(3)])
    );
    let src = source(&sandbox, &read);
    let dest = format!("--destination-config={}", jsonl(&sandbox));
    let (run, saved) = sync(&sandbox, &src, "jsonl", &[&dest]);
    run.expect_code(1);
    let summary = run.json();
    let message = summary["failure"]["message"].as_str().unwrap();
    assert_eq!(summary["failure"]["origin"], "source");
    assert!(message.contains("status 3"), "{message}");
    assert!(message.contains("disk on fire"), "{message}");
    // The last state the destination acknowledged, not the records after it.
    assert_eq!(saved_cursor(&saved), Some(2));
    assert_eq!(saved.unwrap().as_array().unwrap().len(), 1);
    assert_eq!(summary["records_committed"], 2);
}

#[test]
fn a_source_that_completed_its_streams_does_not_hold_up_the_destination() {
    // The source says its stream is complete, closes its output and then
    // exits only once the destination has seen the end of its input (or
    // with status 4 after 20 s): the engine must not wait for the source's
    // exit to end the destination's input, and must still fail the sync on
    // the source's exit status.
    let sandbox = Sandbox::new();
    let ended = sandbox.path("destination-ended");
    let complete = r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"s"},"status":"COMPLETE"}}}"#;
    let read = format!(
        "{}
exec 1>&-
for _ in $(seq 200); do [ -e '{}' ] && exit 3; sleep 0.1; done
exit 4",
        echo_lines(&[record(1), state(1), record(2), complete.to_string()]),
        ended.display()
    );
    let src = source(&sandbox, &read);
    let write = format!(
        "while read -r line; do
  case \"$line\" in *'\"STATE\"'*) echo \"$line\" ;; esac
done
touch '{}'",
        ended.display()
    );
    let dest = destination(&sandbox, &write);
    let (run, saved) = sync(&sandbox, &src, &dest, &[]);
    run.expect_code(1);
    let summary = run.json();
    let message = summary["failure"]["message"].as_str().unwrap();
    assert_eq!(summary["failure"]["origin"], "source", "{summary}");
    assert!(message.contains("status 3"), "{message}");
    assert_eq!(summary["records"], 2, "{summary}");
    assert_eq!(saved_cursor(&saved), Some(1));
}

#[test]
fn a_trace_error_fails_the_sync_with_the_connectors_message() {
    let sandbox = Sandbox::new();
    let trace = r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"the API key was rejected","failure_type":"config_error"}}}"#;
    let src = source(
        &sandbox,
        &echo_lines(&[record(1), state(1), trace.to_string()]),
    );
    let (run, saved) = sync(&sandbox, &src, "devnull", &[]);
    run.expect_code(1);
    let summary = run.json();
    assert!(
        summary["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("the API key was rejected"),
        "{summary}"
    );
    assert_eq!(summary["failure"]["failure_type"], "config_error");
    assert_eq!(saved_cursor(&saved), Some(1));
}

#[test]
fn a_destination_that_never_acknowledges_commits_nothing() {
    let sandbox = Sandbox::new();
    let src = source(
        &sandbox,
        &echo_lines(&[record(1), state(1), record(2), state(2)]),
    );
    let dest = destination(
        &sandbox,
        &format!("cat > {}", sandbox.path("got").display()),
    );
    let (run, saved) = sync(&sandbox, &src, &dest, &[]);
    run.expect_code(1);
    assert_eq!(saved, None, "nothing was committed");
    let summary = run.json();
    assert_eq!(summary["failure"]["origin"], "destination", "{summary}");
    assert_eq!(summary["records_committed"], 0);
    // It did get every message.
    let got = std::fs::read_to_string(sandbox.path("got")).unwrap();
    assert_eq!(got.lines().filter(|l| l.contains("\"STATE\"")).count(), 2);
}

#[test]
fn a_destination_that_acknowledges_out_of_order_fails_the_sync() {
    for (name, echo) in [
        ("out of order", vec![state(2), state(1)]),
        ("a state it never got", vec![state(7)]),
    ] {
        let sandbox = Sandbox::new();
        let src = source(
            &sandbox,
            &echo_lines(&[record(1), state(1), record(2), state(2)]),
        );
        let dest = destination(&sandbox, &format!("cat > /dev/null\n{}", echo_lines(&echo)));
        let (run, saved) = sync(&sandbox, &src, &dest, &[]);
        run.expect_code(1);
        assert_eq!(run.json()["failure"]["origin"], "destination", "{name}");
        assert!(saved_cursor(&saved) != Some(2), "{name}: {saved:?}");
    }
}

#[test]
fn a_destination_exiting_non_zero_fails_the_sync() {
    let sandbox = Sandbox::new();
    let src = source(&sandbox, &echo_lines(&[record(1), state(1)]));
    let dest = destination(
        &sandbox,
        "cat > /dev/null\necho 'no space left' >&2\nexit 5",
    );
    let (run, saved) = sync(&sandbox, &src, &dest, &[]);
    run.expect_code(1);
    let failure = &run.json()["failure"];
    assert_eq!(failure["origin"], "destination");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("status 5") && message.contains("no space left"),
        "{message}"
    );
    assert_eq!(saved, None);
}

/// A destination that fails while the source still has far more to send
/// than the pipes between them hold: the sync fails with the destination's
/// reason and stops the source, instead of waiting on it forever.
#[test]
fn a_destination_that_stops_reading_mid_stream_fails_the_sync_at_once() {
    let sandbox = Sandbox::new();
    let dest = destination(
        &sandbox,
        "head -n 5 > /dev/null\necho 'disk quota exceeded' >&2\nexit 3",
    );
    // About 40 MB of records: many times what the pipes hold.
    // The built-in source, and the same as a process writing to a pipe.
    let process = sandbox.script(
        "sample",
        &format!(
            "sluice={}\ncase \"$1\" in\n  spec) exec \"$sluice\" -o json connector spec sample ;;\n  read) exec \"$sluice\" -o json connector read sample --config \"$3\" --catalog \"$5\" ;;\n  *) exec \"$sluice\" -o json connector \"$1\" sample --config \"$3\" ;;\nesac",
            env!("CARGO_BIN_EXE_sluice")
        ),
    );
    for source in ["sample", process.as_str()] {
        let mut cmd = sandbox.cmd();
        cmd.args(["-o", "json", "sync", "--source", source])
            .args(["--source-config", r#"{"count": 200000}"#])
            .args(["--destination", &dest]);
        let run = run_within(cmd, Duration::from_secs(120));
        run.expect_code(1);
        let failure = &run.json()["failure"];
        assert_eq!(failure["origin"], "destination", "{source}: {failure}");
        let message = failure["message"].as_str().unwrap();
        assert!(
            message.contains("status 3") && message.contains("disk quota exceeded"),
            "{source}: {message}"
        );
    }
}

#[test]
fn ctrl_c_stops_both_connectors_and_keeps_the_committed_state() {
    let sandbox = Sandbox::new();
    let pid_file = sandbox.path("source.pid");
    let read = format!(
        "echo $$ > {}\n{}\nexec sleep 600",
        pid_file.display(),
        echo_lines(&[record(1), state(1)])
    );
    let src = source(&sandbox, &read);
    let state_file = sandbox.path("state.json");
    let child = sandbox
        .cmd()
        .args([
            "-o",
            "json",
            "sync",
            "--source",
            &src,
            "--destination",
            "devnull",
        ])
        .args([
            "--sync-mode",
            "incremental",
            "--state",
            state_file.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !state_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no state was committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let source_pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    send_signal(child.id(), "-INT");
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !std::path::Path::new(&format!("/proc/{source_pid}")).exists(),
        "the source is still running"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(saved_cursor(&Some(saved)), Some(1));
}

#[test]
fn a_line_over_the_limit_fails_the_sync_and_a_shorter_one_passes() {
    let sandbox = Sandbox::new();
    let big = format!(
        r#"{{"type":"RECORD","record":{{"stream":"s","data":{{"x":"{}"}},"emitted_at":1}}}}"#,
        "a".repeat(5000)
    );
    let src = source(&sandbox, &echo_lines(&[record(1), big]));
    let (run, _) = sync(&sandbox, &src, "devnull", &["--max-line-size", "4096"]);
    run.expect_code(1);
    let message = run.json()["failure"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("4096"), "{message}");
    let (run, _) = sync(&sandbox, &src, "devnull", &["--max-line-size", "8192"]);
    run.expect_code(0);
    assert_eq!(run.json()["records"], 2);
}

#[test]
fn secrets_never_reach_output_errors_or_logs() {
    let sandbox = Sandbox::new();
    let secret = "s3cr3t-t0ken-value";
    // The source prints its config to stderr, then fails mentioning it.
    let read = "cat \"$3\" >&2\necho\nexit 4".to_string();
    let src = source(&sandbox, &read);
    let config = format!(r#"{{"token": "{secret}", "n": 1}}"#);
    let (run, _) = sync(&sandbox, &src, "devnull", &["--source-config", &config]);
    run.expect_code(1);
    let summary = run.json();
    let log = std::fs::read_to_string(summary["log_file"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("**********"),
        "the log shows the masked config:\n{log}"
    );
    for (what, text) in [
        ("stdout", run.stdout()),
        ("stderr", run.stderr()),
        ("log", log),
    ] {
        assert!(!text.contains(secret), "{what} shows the secret:\n{text}");
    }

    // A config that does not match the spec: exit 2, naming the field.
    let bad = format!(r#"{{"token": "{secret}", "n": "one"}}"#);
    let (run, _) = sync(&sandbox, &src, "devnull", &["--source-config", &bad]);
    run.expect_code(2);
    assert!(run.stderr().contains("n"), "{}", run.stderr());
    assert!(!run.stderr().contains(secret), "{}", run.stderr());
}

#[test]
fn a_short_secret_is_masked_as_a_value_and_the_words_around_it_stay() {
    let sandbox = Sandbox::new();
    // The source prints its config, then fails with a message of its own.
    let read =
        "cat \"$3\" >&2\necho >&2\necho 'pipeline stopped: the token was rejected' >&2\nexit 4";
    let src = source(&sandbox, read);
    let (run, _) = sync(
        &sandbox,
        &src,
        "devnull",
        &["--source-config", r#"{"token": "p", "n": 1}"#],
    );
    run.expect_code(1);
    let summary = run.json();
    let log = std::fs::read_to_string(summary["log_file"].as_str().unwrap()).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" source ").map(|(_, rest)| rest))
        .collect();
    assert!(
        lines.contains(&r#"INFO {"token":"**********","n":1}"#),
        "{log}"
    );
    assert!(
        lines.contains(&"INFO pipeline stopped: the token was rejected"),
        "{log}"
    );
    let message = summary["failure"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "\n  {\"token\":\"**********\",\"n\":1}\n  pipeline stopped: the token was rejected"
        ),
        "{message}"
    );
}

/// Waits until `ready` holds, for 20 s at most.
#[track_caller]
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_cancelled_overwrite_leaves_the_old_file_and_no_partial_file() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    std::fs::create_dir(&out).unwrap();
    let old = "{\"old\":1}\n";
    std::fs::write(out.join("users.jsonl"), old).unwrap();
    let partial = out.join(".users.jsonl.partial");
    for (what, signals, code) in [
        ("one SIGTERM", &["-TERM"][..], 1),
        ("one Ctrl-C", &["-INT"][..], 1),
        // The second one while the destination is still busy with its
        // input: sluice exits at once.
        ("Ctrl-C twice", &["-INT", "-INT"][..], 130),
    ] {
        let mut child = sandbox
            .cmd()
            .args(["-o", "json", "sync", "--source", "sample"])
            .args(["--source-config", r#"{"count": 100000000}"#])
            .args(["--destination", "jsonl"])
            .arg(format!("--destination-config={}", jsonl(&sandbox)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // stderr, line by line, as it comes.
        let (lines_tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap();
                let _ = lines_tx.send(line.clone());
            }
        });
        wait_for("a partial file of 2 MB", || {
            partial.metadata().is_ok_and(|m| m.len() > 2_000_000)
        });
        for (i, signal) in signals.iter().enumerate() {
            send_signal(child.id(), signal);
            if i == 0 {
                let stopping = lines
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .unwrap();
                assert!(stopping.starts_with("Stopping the sync"), "{stopping}");
            }
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let rest: Vec<String> = lines.try_iter().collect();
        assert_eq!(status.code(), Some(code), "{what}: {rest:?}");
        assert_eq!(dir_names(&out), ["users.jsonl"], "{what}");
        assert_eq!(
            std::fs::read_to_string(out.join("users.jsonl")).unwrap(),
            old,
            "{what}"
        );
    }
}

#[test]
fn a_destination_write_error_leaves_the_old_file_and_no_partial_file() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("users.jsonl"), "{\"old\":1}\n").unwrap();
    // Files may grow to 64 KiB at most (dash counts 512-byte blocks), and
    // writing past that fails (EFBIG) instead of killing sluice. The
    // records (about 20 MB) are many times what that and the pipes hold.
    let base = sandbox.cmd();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "trap '' XFSZ; ulimit -f 128; exec \"$@\"", "sh"])
        .arg(base.get_program())
        .args([
            "-o",
            "json",
            "sync",
            "--source",
            "sample",
            "--source-config",
        ])
        .args([r#"{"count": 100000}"#, "--destination", "jsonl"])
        .arg(format!("--destination-config={}", jsonl(&sandbox)))
        .current_dir(sandbox.dir.path());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let run = run_within(cmd, Duration::from_secs(120));
    run.expect_code(1);
    let failure = &run.json()["failure"];
    assert_eq!(failure["origin"], "destination", "{failure}");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("File too large"),
        "{failure}"
    );
    assert_eq!(dir_names(&out), ["users.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(out.join("users.jsonl")).unwrap(),
        "{\"old\":1}\n"
    );
}
