//! Connector references as users write them: `sample`, `builtin:jsonl`,
//! `exec:/path/to/program`, `python:airbyte-source-faker==7.2.1`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectorRef {
    /// A native connector compiled into sluice.
    Builtin(String),
    /// A local executable that speaks the protocol.
    Exec(PathBuf),
    /// An Airbyte connector from PyPI, run from a managed virtualenv.
    Python {
        package: String,
        version: Option<String>,
    },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid connector reference `{reference}`: {reason}")]
pub struct RefError {
    pub reference: String,
    pub reason: String,
}

impl FromStr for ConnectorRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, RefError> {
        let err = |reason: &str| RefError {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Ok(ConnectorRef::Builtin(s.to_string()));
        };
        match scheme {
            "builtin" if !rest.is_empty() => Ok(ConnectorRef::Builtin(rest.to_string())),
            "exec" if !rest.is_empty() => Ok(ConnectorRef::Exec(PathBuf::from(rest))),
            "python" => {
                let (package, version) = match rest.split_once("==") {
                    Some((p, v)) => (p.trim(), Some(v.trim())),
                    None => (rest.trim(), None),
                };
                if package.is_empty() || !package.chars().all(is_package_char) {
                    return Err(err("write python:PACKAGE or python:PACKAGE==VERSION"));
                }
                if let Some(v) = version {
                    if v.is_empty() || !v.chars().all(is_package_char) {
                        return Err(err("the version after `==` must be an exact version"));
                    }
                }
                Ok(ConnectorRef::Python {
                    package: package.to_ascii_lowercase().replace('_', "-"),
                    version: version.map(str::to_string),
                })
            }
            "docker" => Err(err(
                "Docker connectors are not available in this build of sluice",
            )),
            "builtin" | "exec" => Err(err("nothing follows the `:`")),
            other => Err(err(&format!(
                "unknown kind `{other}`; use a built-in name, builtin:NAME, exec:PATH or python:PACKAGE[==VERSION]"
            ))),
        }
    }
}

fn is_package_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '!')
}

impl fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorRef::Builtin(name) => f.write_str(name),
            ConnectorRef::Exec(path) => write!(f, "exec:{}", path.display()),
            ConnectorRef::Python {
                package,
                version: Some(v),
            } => write!(f, "python:{package}=={v}"),
            ConnectorRef::Python {
                package,
                version: None,
            } => write!(f, "python:{package}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            "sample".parse::<ConnectorRef>().unwrap(),
            ConnectorRef::Builtin("sample".into())
        );
        assert_eq!(
            "builtin:jsonl".parse::<ConnectorRef>().unwrap(),
            ConnectorRef::Builtin("jsonl".into())
        );
        assert_eq!(
            "exec:/usr/bin/x".parse::<ConnectorRef>().unwrap(),
            ConnectorRef::Exec("/usr/bin/x".into())
        );
        assert_eq!(
            "python:airbyte_source_Faker==7.2.1"
                .parse::<ConnectorRef>()
                .unwrap(),
            ConnectorRef::Python {
                package: "airbyte-source-faker".into(),
                version: Some("7.2.1".into())
            }
        );
        assert_eq!(
            "python:airbyte-source-faker==7.2.1"
                .parse::<ConnectorRef>()
                .unwrap()
                .to_string(),
            "python:airbyte-source-faker==7.2.1"
        );
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        for bad in ["", "exec:", "python:", "python:a==", "python:a b", "ftp:x"] {
            assert!(bad.parse::<ConnectorRef>().is_err(), "{bad}");
        }
        let e = "ftp:x".parse::<ConnectorRef>().unwrap_err();
        assert!(e.to_string().contains("unknown kind `ftp`"));
    }
}
