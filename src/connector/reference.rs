//! Connector references as users write them: `sample`, `builtin:jsonl`,
//! `exec:/path/to/program`, `python:airbyte-source-faker==7.2.1`,
//! `docker:airbyte/source-faker:6.2.1`: a runtime's scheme, then what that
//! runtime makes of the rest. A bare name is a built-in connector.

use super::registry;
use std::fmt;
use std::str::FromStr;

/// A parsed reference: the runtime that runs it and its target, in the
/// form that runtime gives it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectorRef {
    runtime: &'static str,
    target: String,
}

impl ConnectorRef {
    /// The scheme of the built-in runtime, which bare names use.
    pub const BUILTIN: &'static str = "builtin";

    /// A reference the runtime has already checked.
    pub fn new(runtime: &'static str, target: impl Into<String>) -> Self {
        ConnectorRef {
            runtime,
            target: target.into(),
        }
    }

    pub fn runtime(&self) -> &'static str {
        self.runtime
    }

    /// What follows the scheme: a name, a path, a package, an image.
    pub fn target(&self) -> &str {
        &self.target
    }
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
        let err = |reason: String| RefError {
            reference: s.to_string(),
            reason,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("it is empty".into()));
        }
        let (scheme, rest) = s.split_once(':').unwrap_or((Self::BUILTIN, s));
        let Some(runtime) = registry::runtime(scheme) else {
            return Err(err(format!(
                "unknown kind `{scheme}`; use a built-in name or {}",
                registry::forms().join(", ")
            )));
        };
        let target = runtime.parse(rest).map_err(err)?;
        Ok(ConnectorRef::new(runtime.name(), target))
    }
}

impl fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runtime == Self::BUILTIN {
            f.write_str(&self.target)
        } else {
            write!(f, "{}:{}", self.runtime, self.target)
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
            ConnectorRef::new("builtin", "sample")
        );
        assert_eq!(
            "builtin:jsonl".parse::<ConnectorRef>().unwrap(),
            ConnectorRef::new("builtin", "jsonl")
        );
        assert_eq!(
            "builtin:jsonl".parse::<ConnectorRef>().unwrap().to_string(),
            "jsonl"
        );
        assert_eq!(
            "exec:/usr/bin/x".parse::<ConnectorRef>().unwrap(),
            ConnectorRef::new("exec", "/usr/bin/x")
        );
        assert_eq!(
            "python:airbyte_source_Faker==7.2.1"
                .parse::<ConnectorRef>()
                .unwrap(),
            ConnectorRef::new("python", "airbyte-source-faker==7.2.1")
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
    fn parses_docker_images() {
        for (text, image) in [
            (
                "docker:airbyte/source-faker:6.2.1",
                "airbyte/source-faker:6.2.1",
            ),
            ("docker:localhost:5000/conn:dev", "localhost:5000/conn:dev"),
            (
                "docker:ghcr.io/acme/dest-x@sha256:0123abcd",
                "ghcr.io/acme/dest-x@sha256:0123abcd",
            ),
            ("docker:name:latest", "name:latest"),
        ] {
            let r: ConnectorRef = text.parse().unwrap();
            assert_eq!(r, ConnectorRef::new("docker", image));
            assert_eq!(r.to_string(), text);
        }
        for bad in [
            "docker:",
            "docker:airbyte/source-faker",
            "docker:localhost:5000/conn",
            "docker:Airbyte/Faker:1",
            "docker:a:b c",
            "docker:a@sha256:",
            "docker:a//b:1",
        ] {
            assert!(bad.parse::<ConnectorRef>().is_err(), "{bad}");
        }
        let e = "docker:airbyte/source-faker"
            .parse::<ConnectorRef>()
            .unwrap_err();
        assert!(e.reason.contains("has no tag"), "{e}");
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
