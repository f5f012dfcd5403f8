//! Error classes and exit codes, decided in one place.
//!
//! Library modules return their own typed errors. What the user can fix
//! (a bad flag, a config that does not match its spec, a missing file) is
//! raised as a [`UserError`], which exits 2; any other error exits 1. An
//! error prints as its cause chain, then a blank line, then a hint when
//! there is one.

use std::fmt;

/// The process exit code of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    Success = 0,
    /// The job or operation failed.
    Failed = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// The daemon could not be reached.
    Unreachable = 3,
}

/// Something the user can fix; exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        UserError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// A failure that is not the user's to fix, with a hint of what to do; exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub message: String,
    pub hint: String,
}

impl Trouble {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Trouble {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Trouble {}

/// The exit class of an error and its hint, if any.
pub fn classify(err: &anyhow::Error) -> (ExitClass, Option<String>) {
    let mut class = ExitClass::Failed;
    let mut hint = None;
    for cause in err.chain() {
        if let Some(u) = cause.downcast_ref::<UserError>() {
            class = ExitClass::Usage;
            hint = hint.or_else(|| u.hint.clone());
        }
        if let Some(t) = cause.downcast_ref::<Trouble>() {
            hint = hint.or_else(|| Some(t.hint.clone()));
        }
        if let Some(c) = cause.downcast_ref::<crate::connector::ConnectorError>() {
            if c.is_config_error() {
                class = ExitClass::Usage;
            }
            hint = hint.or_else(|| c.hint().map(str::to_string));
        }
        if cause
            .downcast_ref::<crate::connector::config::ConfigError>()
            .is_some()
        {
            class = ExitClass::Usage;
        }
    }
    (class, hint)
}

/// The error as the user sees it: causes joined with ": ", then the hint
/// after a blank line.
pub fn render(err: &anyhow::Error) -> String {
    let (_, hint) = classify(err);
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // thiserror messages often repeat their source; say each thing once.
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let mut out = format!("error: {}", parts.join(": "));
    if let Some(h) = hint {
        out.push_str("\n\nhint: ");
        out.push_str(&h);
    }
    out
}

/// Whether an error is a broken pipe on our own output (`sluice ... | head`),
/// which ends a command quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_errors_exit_2_with_their_hint() {
        let e: anyhow::Error = UserError::new("no such stream").hint("list them").into();
        let e = e.context("cannot sync");
        assert_eq!(classify(&e), (ExitClass::Usage, Some("list them".into())));
        assert_eq!(
            render(&e),
            "error: cannot sync: no such stream\n\nhint: list them"
        );
    }

    #[test]
    fn other_errors_exit_1_and_keep_their_hint() {
        let e: anyhow::Error = Trouble::new("disk full", "free some space").into();
        let e = e.context("cannot save the state");
        assert_eq!(
            classify(&e),
            (ExitClass::Failed, Some("free some space".into()))
        );
        assert_eq!(
            render(&e),
            "error: cannot save the state: disk full\n\nhint: free some space"
        );
    }
}
