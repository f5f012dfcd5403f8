//! Settings and where they come from.
//!
//! Precedence is written once, in [`pick`]: a command-line flag wins over an
//! environment variable (`SLUICE_*`), which wins over the built-in default.

use crate::connector::RuntimeOptions;
use crate::error::UserError;
use crate::store::Location;
use std::path::PathBuf;

/// The first value set, from the strongest source to the weakest.
pub fn pick<T>(flag: Option<T>, env: Option<T>, default: impl FnOnce() -> T) -> T {
    flag.or(env).unwrap_or_else(default)
}

/// What the command line says about settings. Runtime flags (`--memory`)
/// travel in each request instead.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Logs, the job store, installed connectors.
    pub data_dir: PathBuf,
    /// Managed virtualenvs and other installed connectors.
    pub connectors_dir: PathBuf,
    /// How runtimes run connectors unless a request says otherwise: their
    /// options from the environment (`SLUICE_DOCKER_MEMORY`, `SLUICE_PYTHON`).
    pub runtime: RuntimeOptions,
    /// The job store: an SQLite file in the data dir, or PostgreSQL.
    pub store: Location,
}

impl Settings {
    /// Resolves settings from flags and an environment lookup.
    pub fn resolve(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, UserError> {
        let env_path = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let data_dir = pick(flags.data_dir.clone(), env_path("SLUICE_DATA_DIR"), || {
            dirs::data_dir()
                .map(|d| d.join("sluice"))
                .unwrap_or_else(|| PathBuf::from(".sluice"))
        });
        if data_dir.as_os_str().is_empty() {
            return Err(UserError::new("the data directory is empty").hint(
                "set --data-dir or SLUICE_DATA_DIR to a directory, or unset them for the default",
            ));
        }
        let connectors_dir = pick(None, env_path("SLUICE_CONNECTORS_DIR"), || {
            data_dir.join("connectors")
        });
        let runtime = RuntimeOptions::from_env(&env)
            .with_absolute_paths()
            .map_err(|e| UserError::new(format!("a runtime option's path: {e}")))?;
        runtime.check().map_err(|e| {
            let mut u = UserError::new(e.to_string());
            u.hint = e.hint().map(str::to_string);
            u
        })?;
        let url = pick(
            flags.database_url.clone(),
            env("SLUICE_DATABASE_URL").filter(|v| !v.trim().is_empty()),
            String::new,
        );
        let store = Location::resolve(Some(&url), &data_dir).map_err(|e| {
            UserError::new(e).hint("fix --database-url or SLUICE_DATABASE_URL, or unset them for the SQLite file in the data directory")
        })?;
        Ok(Settings {
            data_dir,
            connectors_dir,
            runtime,
            store,
        })
    }

    pub fn from_env(flags: &Flags) -> Result<Settings, UserError> {
        Settings::resolve(flags, |k| std::env::var(k).ok())
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn flag_beats_env_beats_default() {
        assert_eq!(pick(Some(1), Some(2), || 3), 1);
        assert_eq!(pick(None, Some(2), || 3), 2);
        assert_eq!(pick(None::<i32>, None, || 3), 3);
    }

    #[test]
    fn settings_follow_the_precedence() {
        let env: HashMap<&str, &str> =
            HashMap::from([("SLUICE_DATA_DIR", "/env"), ("SLUICE_PYTHON", "python3.11")]);
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let s = Settings::resolve(&Flags::default(), lookup).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/env"));
        assert_eq!(s.connectors_dir, PathBuf::from("/env/connectors"));
        assert_eq!(s.runtime.get("python", "interpreter"), Some("python3.11"));
        let flags = Flags {
            data_dir: Some("/flag".into()),
            ..Flags::default()
        };
        let s = Settings::resolve(&flags, lookup).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/flag"));
        let s = Settings::resolve(&Flags::default(), |_| None).unwrap();
        assert!(s.data_dir.ends_with("sluice"));
        assert_eq!(s.runtime.get("python", "interpreter"), None);
        assert_eq!(s.store, Location::Sqlite(s.data_dir.join("sluice.db")));
        let pg = |k: &str| (k == "SLUICE_DATABASE_URL").then(|| "postgres://u:p@h/env".to_string());
        let s = Settings::resolve(&Flags::default(), pg).unwrap();
        assert_eq!(s.store, Location::Postgres("postgres://u:p@h/env".into()));
        let flags = Flags {
            database_url: Some("postgres://u:p@h/flag".into()),
            ..Flags::default()
        };
        let s = Settings::resolve(&flags, pg).unwrap();
        assert_eq!(s.store, Location::Postgres("postgres://u:p@h/flag".into()));
    }
}
