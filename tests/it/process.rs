//! How `exec:` connectors are run: their files, arguments and stderr.

use crate::common::Sandbox;

#[test]
fn config_files_are_private_and_removed_and_stderr_is_logged() {
    let sandbox = Sandbox::new();
    let seen = sandbox.path("seen");
    let source = sandbox.script(
        "source",
        &format!(
            r#"case "$1" in
  spec) echo '{{"type":"SPEC","spec":{{"connectionSpecification":{{"type":"object","properties":{{"token":{{"type":"string","airbyte_secret":true}}}}}}}}}}' ;;
  discover) echo '{{"type":"CATALOG","catalog":{{"streams":[{{"name":"s","json_schema":{{"type":"object"}},"supported_sync_modes":["full_refresh"]}}]}}}}' ;;
  read)
    echo "$@" > {seen}/args
    stat -c '%a' "$3" > {seen}/config-mode
    stat -c '%a' "$(dirname "$3")" > {seen}/dir-mode
    echo "$3" > {seen}/config-path
    cat "$3" > {seen}/config
    echo "a line on stderr from the source" >&2
    echo '{{"type":"RECORD","record":{{"stream":"s","data":{{"x":1}},"emitted_at":1}}}}' ;;
esac"#,
            seen = seen.display()
        ),
    );
    std::fs::create_dir(&seen).unwrap();
    let run = sandbox.run(&[
        "-o",
        "json",
        "sync",
        "--source",
        &source,
        "--source-config",
        r#"{"token": "hunter2-secret"}"#,
        "--destination",
        "devnull",
    ]);
    run.expect_code(0);
    let read = |f: &str| {
        std::fs::read_to_string(seen.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert!(
        read("args").starts_with("read --config "),
        "{}",
        read("args")
    );
    assert!(read("args").contains(" --catalog "), "{}", read("args"));
    assert_eq!(read("config-mode"), "600");
    assert_eq!(read("dir-mode"), "700");
    // The connector got the real secret; nothing else shows it.
    assert_eq!(read("config"), r#"{"token":"hunter2-secret"}"#);
    assert!(
        !std::path::Path::new(&read("config-path")).exists(),
        "config file left behind"
    );
    let log = run.json()["log_file"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("a line on stderr from the source"), "{log}");
    for text in [&log, &run.stdout(), &run.stderr()] {
        assert!(!text.contains("hunter2-secret"));
    }
}
