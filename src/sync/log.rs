//! The log of one attempt: every LOG and TRACE message, every line a
//! connector wrote to stderr, every line that was skipped, and what the
//! engine itself decided, one line each, with secrets redacted.

use crate::connector::config::Secrets;
use crate::connector::LogSink;
use crate::protocol::LogLevel;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// Also shown live (on a terminal with `-v`); gets the redacted line.
pub type Echo = Box<dyn Fn(&str, LogLevel, &str) + Send + Sync>;

pub struct AttemptLog {
    path: Option<PathBuf>,
    file: Option<Mutex<std::io::LineWriter<std::fs::File>>>,
    secrets: RwLock<Secrets>,
    echo: Option<Echo>,
}

impl AttemptLog {
    /// A log written to `path` (created 0600, appended to if it exists).
    pub fn create(path: &Path, secrets: Secrets, echo: Option<Echo>) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(AttemptLog {
            path: Some(path.to_path_buf()),
            file: Some(Mutex::new(std::io::LineWriter::new(f))),
            secrets: RwLock::new(secrets),
            echo,
        })
    }

    /// A log kept nowhere but the echo.
    pub fn memory(secrets: Secrets, echo: Option<Echo>) -> Self {
        AttemptLog {
            path: None,
            file: None,
            secrets: RwLock::new(secrets),
            echo,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Adds the secrets of a config learned later (a connector's update).
    pub fn add_secrets(&self, schema: &serde_json::Value, config: &serde_json::Value) {
        self.secrets
            .write()
            .expect("secrets lock")
            .add_config(schema, config);
    }

    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .read()
            .expect("secrets lock")
            .redact(text)
            .into_owned()
    }
}

/// A message as log files hold it: a line per line of the message, each
/// with the time, origin and level; continuation lines indented.
pub fn format_line(at: &str, origin: &str, level: LogLevel, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 48);
    for (i, line) in message.lines().enumerate() {
        let gap = if i == 0 { "" } else { "  " };
        out.push_str(&format!("{at} {origin} {} {gap}{line}\n", level.as_str()));
    }
    out
}

impl LogSink for AttemptLog {
    fn log(&self, origin: &str, level: LogLevel, message: &str) {
        // Borrowed unless something is masked: no copy of most lines.
        let secrets = self.secrets.read().expect("secrets lock");
        let message = secrets.redact(message);
        drop(secrets);
        if let Some(file) = &self.file {
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let mut f = file.lock().expect("log lock");
            let _ = f.write_all(format_line(&now, origin, level, &message).as_bytes());
        }
        if let Some(echo) = &self.echo {
            echo(origin, level, &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_are_redacted_and_timestamped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/a.log");
        let schema =
            json!({"type":"object","properties":{"pw":{"type":"string","airbyte_secret":true}}});
        let secrets = Secrets::from_config(&schema, &json!({"pw": "s3cret"}));
        let log = AttemptLog::create(&path, secrets, None).unwrap();
        log.log(
            "source",
            LogLevel::Warn,
            "login with s3cret failed\nsecond line",
        );
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let first = text.lines().next().unwrap();
        assert!(
            first.ends_with(" source WARN login with ********** failed"),
            "{first}"
        );
        assert!(text.lines().nth(1).unwrap().ends_with("second line"));
    }

    #[test]
    fn a_short_password_is_masked_as_a_value_and_leaves_the_words_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let schema = json!({"type":"object","properties":{
            "user":{"type":"string"},"password":{"type":"string","airbyte_secret":true}}});
        let secrets = Secrets::from_config(&schema, &json!({"user": "pat", "password": "pa"}));
        let log = AttemptLog::create(&path, secrets, None).unwrap();
        log.log(
            "source",
            LogLevel::Error,
            "password authentication failed for user pat (postgres://pat:pa@db/app)",
        );
        log.log(
            "source",
            LogLevel::Info,
            r#"config {"user": "pat", "password": "pa"}"#,
        );
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(" source ").unwrap().1)
            .collect();
        assert_eq!(
            lines,
            [
                "ERROR password authentication failed for user pat (postgres://pat:**********@db/app)",
                r#"INFO config {"user": "pat", "password": "**********"}"#,
            ]
        );
    }
}
