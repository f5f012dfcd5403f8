//! The one error every Api operation answers with: what happened, what
//! kind of trouble it is, and what to do next. It crosses a wire as JSON;
//! the CLI maps its class to an exit code, the daemon its code to an HTTP
//! status.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// Whose trouble it is, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Something the user must fix in their input or setup (exit 2).
    User,
    /// A job or operation ran and failed (exit 1).
    Failed,
    /// The daemon could not be reached (exit 3).
    Unreachable,
    /// A fault in sluice itself (exit 1).
    Internal,
}

/// What went wrong, stable for scripts and HTTP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Input that cannot be used: a bad config, flag, name or file.
    BadRequest,
    /// A name or id that names nothing.
    NotFound,
    /// A clash with what exists: a name taken, a job already running.
    Conflict,
    /// A daemon's TCP request without its token, or with another.
    Unauthorized,
    /// A signed-in browser's request the daemon will not take as it is: a
    /// change without the `X-Sluice-CSRF` header.
    Forbidden,
    /// A request body over the daemon's limit.
    TooLarge,
    /// The operation ran and failed: a connector, a store query.
    Failed,
    /// The daemon did not answer.
    Unreachable,
    /// A fault in sluice.
    Internal,
}

impl ErrorCode {
    pub fn class(self) -> ErrorClass {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::NotFound
            | ErrorCode::Conflict
            | ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::TooLarge => ErrorClass::User,
            ErrorCode::Failed => ErrorClass::Failed,
            ErrorCode::Unreachable => ErrorClass::Unreachable,
            ErrorCode::Internal => ErrorClass::Internal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, ToSchema)]
pub struct ApiError {
    pub class: ErrorClass,
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            class: code.class(),
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Something the user must fix.
    pub fn user(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Failed, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Internal, message)
    }

    pub fn unreachable(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unreachable, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error as part of something larger: `what: message`. Said once
    /// when the message already starts with it.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        let what = what.to_string();
        if !self.message.starts_with(&what) {
            self.message = format!("{what}: {}", self.message);
        }
        self
    }

    /// The error as people read it: the message, then a blank line and the
    /// hint.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}", self.message);
        if let Some(h) = &self.hint {
            out.push_str("\n\nhint: ");
            out.push_str(h);
        }
        out
    }
}

/// `.context(...)` for any result whose error becomes an [`ApiError`].
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, ApiError>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, ApiError> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, ApiError> {
        self.map_err(|e| e.into().context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_a_chain_then_a_hint_and_travel_as_json() {
        let e = ApiError::user("no such stream")
            .hint("list them")
            .context("cannot sync");
        assert_eq!(e.class, ErrorClass::User);
        assert_eq!(
            e.render(),
            "error: cannot sync: no such stream\n\nhint: list them"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"class": "user", "code": "bad_request",
                "message": "cannot sync: no such stream", "hint": "list them"})
        );
        assert_eq!(serde_json::from_value::<ApiError>(json).unwrap(), e);
        let e = ApiError::failed("disk full").context("cannot save the state");
        assert_eq!(e.render(), "error: cannot save the state: disk full");
        assert_eq!(ApiError::not_found("x").context("x").message, "x");
        assert_eq!(ApiError::conflict("taken").class, ErrorClass::User);
        assert_eq!(ApiError::internal("bug").class, ErrorClass::Internal);
    }
}
