//! Runs killed with SIGKILL mid-load: the old table stays whole, and a
//! rerun cleans up and leaves no duplicate.

use super::{file_source, state_line, sync_args, url_config, user};
use crate::common::{PgDatabase, Sandbox};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Starts `sluice sync` in its own process group; waits until `ready`
/// holds, then kills the whole group with SIGKILL.
fn kill_when(sandbox: &Sandbox, args: &[&str], ready: impl Fn() -> bool) {
    use std::os::unix::process::CommandExt;
    let mut child = sandbox
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start sluice");
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the sync never got far enough"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = child.id();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
}

/// `n` users `v1` (`seq` of each by its id), a state after every `every`:
/// the file source's records.
fn users_with_states(n: u32, every: u32, seq: impl Fn(u32) -> u32) -> String {
    let mut lines = Vec::new();
    for i in 1..=n {
        lines.push(user(i, "v1", seq(i), false));
        if i % every == 0 {
            lines.push(state_line(i));
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn postgres_killed_overwrite_leaves_the_old_table_and_a_rerun_cleans_up() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    sandbox.write("records", &(user(1, "old", 1, false) + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &config), &[]);
    assert_eq!(dst.sql("SELECT name FROM users"), "old");

    // Thousands of rows and a checkpoint (which commits the new table's
    // rows), then the source hangs and sluice is killed.
    let mut lines: Vec<String> = (1..=5000).map(|i| user(i, "new", 1, false)).collect();
    lines.push(state_line(1));
    sandbox.write("records", &(lines.join("\n") + "\n"));
    sandbox.write("hang", "");
    let new_rows = || {
        dst.sql(
            "SELECT coalesce(sum(n_live_tup + n_tup_ins), 0) FROM pg_stat_user_tables \
             WHERE relname LIKE '\\_sluice\\_new\\_%'",
        )
        .parse::<i64>()
        .unwrap_or(0)
            > 0
            || dst
                .sql(
                    "SELECT count(*) FROM pg_class c WHERE relname LIKE '\\_sluice\\_new\\_%' \
                     AND pg_relation_size(c.oid) > 0",
                )
                .trim()
                != "0"
    };
    kill_when(&sandbox, &sync_args(&source, &config, &[]), new_rows);
    assert_eq!(
        dst.sql("SELECT string_agg(name, ',') FROM users"),
        "old",
        "readers still see the whole old table"
    );

    std::fs::remove_file(sandbox.path("hang")).unwrap();
    let summary = sandbox.sync((&source, "{}"), ("postgres", &config), &[]);
    assert_eq!(summary["records"], 5000);
    assert_eq!(
        dst.sql("SELECT count(*), min(name), max(name) FROM users"),
        "5000|new|new"
    );
    assert_eq!(
        dst.sql("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_sluice%' AND relkind = 'r'"),
        "0",
        "no leftover tables"
    );
}

#[test]
fn postgres_killed_append_dedup_leaves_no_duplicates_after_a_rerun() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    sandbox.write("records", &users_with_states(3000, 250, |_| 1));
    sandbox.write("hang", "");
    let dedup = [
        "--sync-mode",
        "incremental",
        "--destination-sync-mode",
        "append-dedup",
    ];
    let committed = || {
        crate::common::psql(&dst.url, "SELECT count(*) FROM users")
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            > 0
    };
    kill_when(&sandbox, &sync_args(&source, &config, &dedup), committed);

    // The rerun sends everything again, some of it updated.
    std::fs::remove_file(sandbox.path("hang")).unwrap();
    let mut again: Vec<String> = (1..=3000).map(|i| user(i, "v2", 2, false)).collect();
    again.push(state_line(1));
    sandbox.write("records", &(again.join("\n") + "\n"));
    sandbox.sync((&source, "{}"), ("postgres", &config), &dedup);
    assert_eq!(
        dst.sql("SELECT count(*), count(DISTINCT id), min(name), max(name) FROM users"),
        "3000|3000|v2|v2"
    );
}

#[test]
fn postgres_commits_states_at_most_a_second_late_even_when_the_source_stalls() {
    let Some(dst) = PgDatabase::create() else {
        return;
    };
    let sandbox = Sandbox::new();
    let source = file_source(&sandbox);
    let config = url_config(&dst);
    // A checkpoint every hundred records (committed together, not one
    // transaction each), then the source hangs after its last one.
    sandbox.write("records", &users_with_states(3000, 100, |i| i));
    sandbox.write("hang", "");
    let state = sandbox.path("state.json");
    let state_arg = state.display().to_string();
    let args = ["--sync-mode", "incremental", "--state", &state_arg];
    let last_acknowledged = || {
        std::fs::read_to_string(&state)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<String>()
            .contains(r#""n":3000"#)
    };
    let start = Instant::now();
    kill_when(
        &sandbox,
        &sync_args(&source, &config, &args),
        last_acknowledged,
    );
    // Acknowledged while the source still hung (it sleeps 60 s), so
    // committed: every record before it is in the table.
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(dst.sql("SELECT count(*) FROM users"), "3000");
}
