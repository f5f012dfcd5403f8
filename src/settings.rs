//! Settings and where they come from.
//!
//! Precedence is written once, in [`pick`]: a command-line flag wins over an
//! environment variable (`SLUICE_*`), which wins over the built-in default.

use crate::connector::docker::{self, DockerConfig, PullPolicy, Transport};
use crate::error::UserError;
use crate::store::Location;
use std::path::PathBuf;

/// The first value set, from the strongest source to the weakest.
pub fn pick<T>(flag: Option<T>, env: Option<T>, default: impl FnOnce() -> T) -> T {
    flag.or(env).unwrap_or_else(default)
}

/// What the command line says about settings.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub docker: DockerFlags,
}

/// How Docker connectors run, as the command line says.
#[derive(Debug, Clone, Default)]
pub struct DockerFlags {
    pub pull: Option<PullPolicy>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub network: Option<String>,
    pub local_root: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Logs, the job store, installed connectors.
    pub data_dir: PathBuf,
    /// Managed virtualenvs and other installed connectors.
    pub connectors_dir: PathBuf,
    /// The interpreter Python connectors' virtualenvs are made with.
    pub python: String,
    /// How Docker connectors run.
    pub docker: DockerConfig,
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
        let python = pick(None, env("SLUICE_PYTHON").filter(|v| !v.is_empty()), || {
            "python3".to_string()
        });
        let docker = docker_config(&flags.docker, &env)?;
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
            python,
            docker,
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

fn docker_config(
    flags: &DockerFlags,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<DockerConfig, UserError> {
    let defaults = DockerConfig::default();
    let env_value = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    fn parsed<T>(
        key: &str,
        value: Option<String>,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, UserError> {
        value
            .map(|v| {
                parse(&v).map_err(|e| {
                    UserError::new(format!("{key}: {e}")).hint(format!("fix or unset {key}"))
                })
            })
            .transpose()
    }
    let pull = parsed("SLUICE_DOCKER_PULL", env_value("SLUICE_DOCKER_PULL"), |v| {
        v.parse::<PullPolicy>()
    })?;
    let memory = parsed(
        "SLUICE_DOCKER_MEMORY",
        env_value("SLUICE_DOCKER_MEMORY"),
        docker::parse_memory,
    )?;
    let cpus = parsed(
        "SLUICE_DOCKER_CPUS",
        env_value("SLUICE_DOCKER_CPUS"),
        docker::parse_cpus,
    )?;
    let transport = parsed(
        "SLUICE_DOCKER_TRANSPORT",
        env_value("SLUICE_DOCKER_TRANSPORT"),
        |v| v.parse::<Transport>(),
    )?;
    let local_root = pick(
        flags.local_root.clone().map(Some),
        env_value("SLUICE_DOCKER_LOCAL_ROOT").map(|v| Some(PathBuf::from(v))),
        || None,
    );
    // The engine mounts absolute paths only, and creates missing ones as root.
    let local_root = match local_root {
        Some(dir) => Some(
            std::path::absolute(&dir)
                .map_err(|e| UserError::new(format!("the local root {}: {e}", dir.display())))?,
        ),
        None => None,
    };
    Ok(DockerConfig {
        pull: pick(flags.pull, pull, || defaults.pull),
        memory: pick(flags.memory, memory, || defaults.memory),
        cpus: pick(flags.cpus, cpus, || defaults.cpus),
        network: pick(
            flags.network.clone().map(Some),
            env_value("SLUICE_DOCKER_NETWORK").map(Some),
            || None,
        ),
        local_root,
        transport: transport.unwrap_or_default(),
    })
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
        assert_eq!(s.python, "python3.11");
        let flags = Flags {
            data_dir: Some("/flag".into()),
            ..Flags::default()
        };
        let s = Settings::resolve(&flags, lookup).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/flag"));
        let s = Settings::resolve(&Flags::default(), |_| None).unwrap();
        assert!(s.data_dir.ends_with("sluice"));
        assert_eq!(s.python, "python3");
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

    #[test]
    fn docker_settings_follow_the_precedence() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("SLUICE_DOCKER_MEMORY", "1g"),
            ("SLUICE_DOCKER_CPUS", "0.5"),
            ("SLUICE_DOCKER_PULL", "never"),
            ("SLUICE_DOCKER_NETWORK", "dbnet"),
        ]);
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let s = Settings::resolve(&Flags::default(), |_| None).unwrap();
        assert_eq!(s.docker, DockerConfig::default());
        let s = Settings::resolve(&Flags::default(), lookup).unwrap();
        assert_eq!(s.docker.memory, 1 << 30);
        assert_eq!(s.docker.cpus, 0.5);
        assert_eq!(s.docker.pull, PullPolicy::Never);
        assert_eq!(s.docker.network.as_deref(), Some("dbnet"));
        let flags = Flags {
            docker: DockerFlags {
                memory: Some(512 << 20),
                pull: Some(PullPolicy::Always),
                network: Some("other".into()),
                local_root: Some("out".into()),
                ..DockerFlags::default()
            },
            ..Flags::default()
        };
        let s = Settings::resolve(&flags, lookup).unwrap();
        assert_eq!(s.docker.memory, 512 << 20);
        assert_eq!(s.docker.cpus, 0.5);
        assert_eq!(s.docker.pull, PullPolicy::Always);
        assert_eq!(s.docker.network.as_deref(), Some("other"));
        assert!(s.docker.local_root.unwrap().is_absolute());
        let e = Settings::resolve(&Flags::default(), |k| {
            (k == "SLUICE_DOCKER_MEMORY").then(|| "lots".to_string())
        })
        .unwrap_err();
        assert!(
            e.message.starts_with("SLUICE_DOCKER_MEMORY: "),
            "{}",
            e.message
        );
    }
}
