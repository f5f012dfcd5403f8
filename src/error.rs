//! How the errors of the floors below the Api become its [`ApiError`],
//! decided in one place: each typed error says whether it is the user's to
//! fix, a failure, or a fault, with the hint it knows.
//!
//! Library modules return their own typed errors. What the user can fix
//! that has no type of its own (a bad flag, a missing file) is raised as a
//! [`UserError`]; a failure that is not theirs but has advice, as a
//! [`Trouble`].

use crate::api::{ApiError, ErrorCode};
use crate::connector::config::ConfigError;
use crate::connector::ConnectorError;
use crate::store::StoreError;
use std::fmt;

/// Something the user can fix.
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

/// A failure that is not the user's to fix, with a hint of what to do.
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

impl From<UserError> for ApiError {
    fn from(e: UserError) -> ApiError {
        ApiError {
            hint: e.hint,
            ..ApiError::user(e.message)
        }
    }
}

impl From<Trouble> for ApiError {
    fn from(e: Trouble) -> ApiError {
        ApiError::failed(e.message).hint(e.hint)
    }
}

impl From<ConnectorError> for ApiError {
    fn from(e: ConnectorError) -> ApiError {
        let code = if e.is_config_error() {
            ErrorCode::BadRequest
        } else {
            ErrorCode::Failed
        };
        ApiError {
            hint: e.hint().map(str::to_string),
            ..ApiError::new(code, e.to_string())
        }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        ApiError::user(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    /// Names taken and things in use are the user's to fix; a store that
    /// cannot be opened is their setup's.
    fn from(e: StoreError) -> ApiError {
        let message = e.to_string();
        match &e {
            StoreError::Exists { kind, .. } => ApiError::conflict(message).hint(format!(
                "choose another name, or change it with `sluice {kind} update`"
            )),
            StoreError::JobRunning { connection } => ApiError::conflict(message).hint(format!(
                "`sluice job list --connection {connection} --status running` shows it"
            )),
            StoreError::InUse { .. } => ApiError::conflict(message)
                .hint("delete those connections first (`sluice connection delete NAME`)"),
            StoreError::Open { .. } | StoreError::Dir { .. } => {
                let hint = if message.contains("certificate") {
                    "check the URL's sslmode and sslrootcert (the CA that signed the server's \
                     certificate); verify-full needs the host the certificate was issued for"
                } else {
                    "check the database is running and --database-url / SLUICE_DATABASE_URL"
                };
                ApiError::user(message).hint(hint)
            }
            StoreError::Migrate { .. } | StoreError::Query { .. } | StoreError::Corrupt { .. } => {
                ApiError::failed(message)
            }
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::failed(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorClass;

    #[test]
    fn each_error_knows_whose_it_is() {
        let e: ApiError = UserError::new("no such stream").hint("list them").into();
        assert_eq!(
            (e.class, e.hint.as_deref()),
            (ErrorClass::User, Some("list them"))
        );
        let e: ApiError = Trouble::new("disk full", "free some space").into();
        assert_eq!(
            (e.class, e.hint.as_deref()),
            (ErrorClass::Failed, Some("free some space"))
        );
        let e: ApiError = StoreError::JobRunning {
            connection: "c".into(),
        }
        .into();
        assert_eq!((e.class, e.code), (ErrorClass::User, ErrorCode::Conflict));
        let e: ApiError =
            ConnectorError::Unknown("there is no built-in connector named `x`".into()).into();
        assert_eq!(e.class, ErrorClass::User);
        let e: ApiError = ConnectorError::Runtime {
            connector: "docker:a:1".into(),
            message: "boom".into(),
        }
        .into();
        assert_eq!(e.class, ErrorClass::Failed);
    }
}
