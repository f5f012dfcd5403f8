//! The job store itself: `db status` names the backend (and masks the
//! password), `--database-url` wins over the environment, and two
//! processes can open, migrate and write one store at once.

use super::Env;

both_backends!(
    db_status_names_the_backend,
    two_processes_write_one_store_at_once,
);

fn db_status_names_the_backend(env: &Env) {
    let status = env.json(&["db", "status"]);
    assert_eq!(status["applied"][0]["version"], 1, "{status}");
    match &env.db {
        None => {
            assert_eq!(status["backend"], "sqlite");
            let db = env.sandbox.data_dir().join("sluice.db");
            assert_eq!(status["url"], format!("sqlite://{}", db.display()));
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&db), 0o600);
            assert_eq!(mode(&env.sandbox.data_dir()), 0o700);
        }
        Some(db) => {
            assert_eq!(status["backend"], "postgres");
            let url = status["url"].as_str().unwrap();
            assert!(url.contains(":****@"), "{url}");
            assert!(url.ends_with(&db.name), "{url}");
            assert!(!url.contains(":sluice@"), "the password is masked: {url}");
        }
    }
    // --database-url wins over SLUICE_DATABASE_URL.
    let other = env.sandbox.path("other.db");
    let url = format!("sqlite://{}", other.display());
    let status = env.json(&["--database-url", &url, "db", "status"]);
    assert_eq!(status["url"], url);
    assert!(other.exists());
    // An unreachable server: said with the password masked, and what to do;
    // a setting the user must fix, so exit 2.
    let down = env.run(&[
        "--database-url",
        "postgres://u:pw-XYZ@127.0.0.1:1/x",
        "db",
        "status",
    ]);
    down.expect_code(2);
    let err = down.stderr();
    assert!(
        err.contains("cannot open the job store at postgres://u:****@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(err.contains("hint: check the database is running"), "{err}");
    assert!(!err.contains("pw-XYZ"), "{err}");
    let migrated = env.run(&["db", "migrate"]);
    migrated.expect_code(0);
    assert!(migrated.stderr().contains("The job store is up to date."));
}

fn two_processes_write_one_store_at_once(env: &Env) {
    // Both processes open (and, for a new store, migrate) it at once.
    let spawn = |prefix: &str| {
        let mut children = Vec::new();
        for i in 0..6 {
            let name = format!("{prefix}-{i}");
            children.push(
                env.cmd()
                    .args([
                        "source",
                        "create",
                        &name,
                        "--connector",
                        "sample",
                        "--no-check",
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        children
    };
    let mut all = spawn("a");
    all.extend(spawn("b"));
    for child in all {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = env.json(&["source", "list"]);
    assert_eq!(names.as_array().unwrap().len(), 12, "{names}");
}
