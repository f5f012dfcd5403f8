//! Where the store is: an SQLite file or a PostgreSQL URL, and how it is
//! shown (never with its password).

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Location {
    /// The store a `--database-url` names, else the SQLite file in `data_dir`.
    pub fn resolve(url: Option<&str>, data_dir: &Path) -> Result<Location, String> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Location::Sqlite(super::default_path(data_dir)));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or(url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            if !path.is_empty() {
                return Ok(Location::Sqlite(PathBuf::from(path)));
            }
        }
        Err(format!(
            "`{}` is not a database URL sluice can use: give postgres://USER:PASSWORD@HOST/DB or sqlite://PATH",
            mask_url(url)
        ))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(u) => f.write_str(&mask_url(u)),
        }
    }
}

// The URL holds a password: Debug shows it masked, as Display does.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// A URL with the password of its user info (and any `password=` query
/// parameter) replaced by `****`.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                out.replace_range(start..end, "****");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{base}{}", masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://u:s3cret@db:5432/x"),
            "postgres://u:****@db:5432/x"
        );
        assert_eq!(mask_url("postgres://u:p@ss@db/x"), "postgres://u:****@db/x");
        assert_eq!(mask_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(
            mask_url("postgres://db/x?user=u&password=pw&sslmode=require"),
            "postgres://db/x?user=u&password=****&sslmode=require"
        );
        let loc = Location::resolve(Some("postgresql://a:b@h/d"), Path::new("/d")).unwrap();
        assert_eq!(
            format!("{loc} {loc:?}"),
            "postgresql://a:****@h/d Location(postgresql://a:****@h/d)"
        );
    }

    #[test]
    fn the_default_is_sqlite_in_the_data_dir() {
        assert_eq!(
            Location::resolve(None, Path::new("/data")).unwrap(),
            Location::Sqlite(PathBuf::from("/data/sluice.db"))
        );
        assert_eq!(
            Location::resolve(Some("sqlite:///tmp/x.db"), Path::new("/d")).unwrap(),
            Location::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        let e = Location::resolve(Some("mysql://u:pw@h/d"), Path::new("/d")).unwrap_err();
        assert!(e.contains("mysql://u:****@h/d"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
    }
}
