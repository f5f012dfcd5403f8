//! The tables people read, as snapshots with the sandbox, times and
//! durations filtered out.

use super::{echo_lines, record, script_source, setup_connection, state, Env};

/// The tables people read (SQLite only: the store does not change them).
#[test]
fn tables_for_people() {
    let env = Env::sqlite();
    let s = &env.sandbox;
    let src = script_source(s, &echo_lines(&[record(1), state(1), record(2), state(2)]));
    setup_connection(&env, &src);
    env.ok(&["connection", "sync", "c"]);
    let sandbox = regex_escape(&s.dir.path().display().to_string());
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&sandbox, "[SANDBOX]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r"\b\d+(\.\d)? (ms|s)\b", "[DURATION]");
    // Column widths follow the filtered values: compare cells, not padding.
    settings.add_filter(r" {2,}", "  ");
    settings.add_filter(r"[-=]{3,}", "---");
    settings.bind(|| {
        insta::assert_snapshot!("source_list", env.ok(&["source", "list"]).stdout());
        insta::assert_snapshot!("connection_list", env.ok(&["connection", "list"]).stdout());
        insta::assert_snapshot!("job_get", env.ok(&["job", "get", "1"]).stdout());
    });
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
