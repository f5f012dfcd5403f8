//! Connector references as users write them: `sample`, `builtin:jsonl`,
//! `exec:/path/to/program`, `python:airbyte-source-faker==7.2.1`,
//! `docker:airbyte/source-faker:6.2.1`.

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
    /// A Docker image, `REPOSITORY:TAG` or `REPOSITORY@DIGEST`, run one
    /// container per protocol command.
    Docker { image: String },
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
            "docker" => docker_image(rest)
                .map(|image| ConnectorRef::Docker { image })
                .map_err(|reason| err(&reason)),
            "builtin" | "exec" => Err(err("nothing follows the `:`")),
            other => Err(err(&format!(
                "unknown kind `{other}`; use a built-in name, builtin:NAME, exec:PATH, python:PACKAGE[==VERSION] or docker:IMAGE:TAG"
            ))),
        }
    }
}

/// Checks an image reference: a repository (optionally behind a registry
/// host) with a tag or a digest. A tag is required: a connector that
/// changes under a sync because `latest` moved is a surprise nobody wants.
fn docker_image(rest: &str) -> Result<String, String> {
    const FORM: &str = "write docker:IMAGE:TAG, e.g. docker:airbyte/source-faker:6.2.1";
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(FORM.into());
    }
    let (repository, has_version) = match rest.split_once('@') {
        Some((repo, digest)) => {
            let valid = digest.split_once(':').is_some_and(|(algo, hex)| {
                !algo.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !valid {
                return Err("the digest after `@` must look like sha256:0123abc...".into());
            }
            (repo, true)
        }
        None => {
            // A `:` after the last `/` starts the tag; one before it is a
            // registry port (localhost:5000/name).
            let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[last_slash..].rfind(':') {
                Some(i) => {
                    let tag = &rest[last_slash + i + 1..];
                    let ok = !tag.is_empty()
                        && tag.len() <= 128
                        && tag
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    if !ok {
                        return Err(format!("`{tag}` is not a valid image tag; {FORM}"));
                    }
                    (&rest[..last_slash + i], true)
                }
                None => (rest, false),
            }
        }
    };
    if !has_version {
        return Err(format!("the image has no tag; {FORM}"));
    }
    let path = match repository.split_once('/') {
        // The first part is a registry host when it looks like one.
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => path,
        _ => repository,
    };
    let valid_path = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        });
    if !valid_path {
        return Err(format!(
            "`{repository}` is not a valid image name (lower-case letters, digits, `.`, `_`, `-` and `/`)"
        ));
    }
    Ok(rest.to_string())
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
            ConnectorRef::Docker { image } => write!(f, "docker:{image}"),
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
            assert_eq!(
                r,
                ConnectorRef::Docker {
                    image: image.into()
                }
            );
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
