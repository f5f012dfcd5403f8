//! Connecting: sslmode encrypts and verifies the server's certificate, a
//! wrong password is a clear error that never shows the password, and a
//! field left out is named before any connection is tried.

use super::connector;
use crate::common::{PgDatabase, Sandbox};
use serde_json::Value;

/// A sync from postgres with `config` to devnull, which must fail: what it
/// printed.
fn failed_sync(sandbox: &Sandbox, config: &str) -> String {
    let run = sandbox.run(&[
        "sync",
        "--source",
        "postgres",
        "--source-config",
        config,
        "--destination",
        "devnull",
    ]);
    assert_ne!(run.code(), 0);
    format!("{}{}", run.stdout(), run.stderr())
}

#[test]
fn postgres_wrong_password_is_a_clear_error_without_the_password() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let secret = "wr0ng-s3cret-pw";
    let url = db.url.replacen(":sluice@", &format!(":{secret}@"), 1);
    assert!(url.contains(secret), "{url}");
    let fields = serde_json::json!({
        "host": "localhost", "port": 5432, "database": db.name,
        "username": "sluice", "password": secret,
    })
    .to_string();
    for config in [serde_json::json!({ "url": url }).to_string(), fields] {
        let all = failed_sync(&sandbox, &config);
        assert!(all.contains("password authentication failed"), "{all}");
        assert!(!all.contains(secret), "{all}");
        let check = sandbox.connector("check", "postgres", &config);
        let all = format!("{}{}", check.stdout(), check.stderr());
        assert!(all.contains("password authentication failed"), "{all}");
        assert!(!all.contains(secret), "{all}");
    }
}

#[test]
fn postgres_sslmode_encrypts_and_verifies_the_server_certificate() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let ca = std::env::var("SLUICE_TEST_PG_CA").ok();
    if !crate::common::require(ca.is_some(), "the test server's CA (SLUICE_TEST_PG_CA)") {
        return;
    }
    let ca = std::fs::read_to_string(ca.unwrap()).expect("the CA certificate");
    // What the connection itself sees: whether it is encrypted.
    db.sql("CREATE VIEW tls AS SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    let sandbox = Sandbox::new();
    let config = |host: &str, sslmode: Value| {
        serde_json::json!({
            "host": host, "port": 5432, "database": db.name,
            "username": "sluice", "password": "sluice", "sslmode": sslmode,
        })
        .to_string()
    };
    let out = sandbox.path("out");
    let destination = serde_json::json!({ "path": out }).to_string();
    let encrypted = |config: &str| {
        sandbox.sync(("postgres", config), ("jsonl", &destination), &[]);
        let rows = crate::common::read_jsonl(&out.join("public").join("tls.jsonl"));
        assert_eq!(rows.len(), 1, "{rows:?}");
        rows[0]["ssl"]
            .as_bool()
            .unwrap_or_else(|| panic!("{:?}", rows[0]))
    };
    assert!(!encrypted(&config("localhost", "disable".into())));
    assert!(encrypted(&config("localhost", "require".into())));
    let verify_full = serde_json::json!({"mode": "verify-full", "ca_certificate": ca});
    assert!(encrypted(&config("localhost", verify_full.clone())));
    // Airbyte's spelling of the field, and verify-ca, which does not check
    // the name the certificate was issued for.
    let verify_ca = serde_json::json!({"mode": "verify-ca", "ca_certificate": ca});
    let airbyte = config("127.0.0.1", verify_ca).replace("\"sslmode\"", "\"ssl_mode\"");
    assert!(encrypted(&airbyte));

    // Refused: a name the certificate is not for, and a CA nobody gave.
    let refused = [
        config("127.0.0.1", verify_full),
        config("localhost", serde_json::json!({"mode": "verify-ca"})),
    ];
    for config in refused {
        let all = failed_sync(&sandbox, &config);
        assert!(all.contains("certificate"), "{all}");
        assert!(all.contains("ca_certificate"), "says what to do: {all}");
    }
}

#[test]
fn postgres_missing_fields_are_config_errors_naming_them() {
    let sandbox = Sandbox::new();
    // Nothing listens on port 9: a connection tried would fail otherwise.
    let configs = [
        (
            serde_json::json!({"host": "127.0.0.1", "port": 9, "database": "d", "username": "u"}),
            "`password`",
        ),
        (
            serde_json::json!({"port": 9, "password": "s3cret-pw"}),
            "`host`, `database`, `username`",
        ),
    ];
    for (config, named) in configs {
        let config = config.to_string();
        let missing = format!("the postgres config is missing {named}");
        let check = connector(&sandbox, "check", &config, &[]);
        let status = &check.messages()[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.contains(&missing), "{message}");
        assert!(
            !message.contains("connect"),
            "no connection is tried: {message}"
        );

        let discover = sandbox.run(&["connector", "discover", "postgres", "--config", &config]);
        assert_eq!(discover.code(), 2, "a config error: {}", discover.stderr());
        assert!(
            discover.stderr().contains(&missing),
            "{}",
            discover.stderr()
        );

        let catalog = sandbox.write(
            "catalog.json",
            r#"{"streams":[{"stream":{"name":"t","json_schema":{"type":"object"},
                "supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh",
                "destination_sync_mode":"append"}]}"#,
        );
        let read = connector(
            &sandbox,
            "read",
            &config,
            &["--catalog", catalog.to_str().unwrap()],
        );
        let error = read
            .messages()
            .into_iter()
            .find(|m| m["type"] == "TRACE")
            .unwrap_or_else(|| panic!("no TRACE in {}", read.stdout()));
        assert_eq!(error["trace"]["error"]["failure_type"], "config_error");
        let message = error["trace"]["error"]["message"].as_str().unwrap();
        assert!(message.contains(&missing), "{message}");

        // A sync: the source fails in discover, the destination in write.
        let all = failed_sync(&sandbox, &config);
        assert!(all.contains(&missing), "{all}");
        assert!(all.contains("config"), "{all}");
        let write = sandbox.run(&[
            "sync",
            "--source",
            "sample",
            "--source-config",
            r#"{"count": 1}"#,
            "--destination",
            "postgres",
            "--destination-config",
            &config,
        ]);
        // Checked before the source is read: a config error, exit 2.
        assert_eq!(write.code(), 2, "{}", write.stderr());
        let all = format!("{}{}", write.stdout(), write.stderr());
        assert!(all.contains(&missing), "{all}");
        assert!(!all.contains("s3cret-pw"), "{all}");
    }
}
