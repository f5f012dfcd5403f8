//! The user's files: configs, catalogs and states are read here, on the
//! machine the command runs on, and sent as values; what comes back to be
//! kept (a committed state, a connector's updated config) is written here.
//! Files are replaced atomically.

use crate::api::{ApiError, ConfiguredAirbyteCatalog};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A connector config as given: JSON text, a file, or nothing.
#[derive(Debug, Clone, Default)]
pub struct ConfigArg {
    pub value: Option<Value>,
    /// The file it came from, where updates are written back.
    pub file: Option<PathBuf>,
}

impl ConfigArg {
    /// `FILE|JSON`: text that starts with `{` is JSON, anything else a
    /// path; `what` names it in errors ("source config").
    pub fn read(arg: Option<&str>, what: &str) -> Result<ConfigArg, ApiError> {
        let Some(arg) = arg else {
            return Ok(ConfigArg::default());
        };
        let trimmed = arg.trim_start();
        if trimmed.starts_with('{') {
            let value = serde_json::from_str(trimmed).map_err(|e| {
                ApiError::user(format!("the {what} is not valid JSON: {e}"))
                    .hint("quote it for the shell: --source-config '{\"count\": 10}'")
            })?;
            return Ok(ConfigArg {
                value: Some(value),
                file: None,
            });
        }
        let path = PathBuf::from(arg);
        let bytes = std::fs::read(&path).map_err(|e| {
            ApiError::user(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            ))
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::user(format!(
                "the {what} file {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        Ok(ConfigArg {
            value: Some(value),
            file: Some(path),
        })
    }

    /// Writes an updated config back to its file, keeping its mode.
    pub fn keep(&self, config: &Value) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Err("the config was given inline, not in a file".into());
        };
        let mut bytes = serde_json::to_vec_pretty(config).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        let mode = std::fs::metadata(path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or(0o600);
        crate::fsutil::write_atomic(path, &bytes, mode)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Makes the relative paths of a config absolute, where its connector's
/// spec marks a field as a path (`"sluice_path": true`): a stored source
/// or destination must not move with the directory a command ran in (a
/// daemon has none). Returns each change, as (field, given, kept).
pub fn absolute_paths(schema: &Value, config: &mut Value) -> Vec<(String, String, String)> {
    let mut changes = Vec::new();
    crate::api::visit_paths(schema, config, &mut |field, text| {
        if Path::new(text.as_str()).is_relative() {
            if let Ok(absolute) = std::path::absolute(text.as_str()) {
                let absolute = absolute.to_string_lossy().into_owned();
                changes.push((field.to_string(), text.clone(), absolute.clone()));
                *text = absolute;
            }
        }
    });
    changes
}

pub fn read_catalog(path: &Path) -> Result<ConfiguredAirbyteCatalog, ApiError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ApiError::user(format!("cannot read the catalog {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::user(format!(
            "the catalog {} is not a configured catalog: {e}",
            path.display()
        ))
        .hint("a configured catalog is {\"streams\": [{\"stream\": {...}, \"sync_mode\": ..., \"destination_sync_mode\": ...}]}; `sluice connector discover` prints a source's streams")
    })
}

/// The state in a state file; a missing or empty file is no state. Its
/// form is checked by whoever runs the sync.
pub fn read_state(path: &Path) -> Result<Option<Value>, ApiError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ApiError::user(format!(
                "cannot read the state file {}: {e}",
                path.display()
            )))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::user(format!(
            "the state file {} is not valid JSON: {e}",
            path.display()
        ))
    })
}

/// Checks, before anything runs, that `path` can be written (its directory
/// takes a new file), so a state that cannot be kept stops the sync before
/// it moves a record rather than after.
pub fn writable(path: &Path, what: &str) -> Result<(), ApiError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let why = if !dir.is_dir() {
        format!("its directory {} does not exist", dir.display())
    } else {
        match tempfile::NamedTempFile::new_in(dir) {
            Ok(_) => return Ok(()),
            Err(e) => format!(
                "{} cannot be written ({})",
                dir.display(),
                std::io::Error::from(e.kind())
            ),
        }
    };
    Err(ApiError::user(format!(
        "the {what} {} cannot be written: {why}",
        path.display()
    ))
    .hint(format!(
        "give a {what} in a directory that exists and can be written"
    )))
}

/// Rewrites a state file with a committed state, atomically.
pub fn write_state(path: &Path, state: &Value) -> Result<(), ApiError> {
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(path, &bytes, 0o600).map_err(|e| {
        ApiError::failed(format!(
            "could not save the committed state to {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_json_or_files() {
        let c = ConfigArg::read(Some(" {\"a\":1}"), "config").unwrap();
        assert_eq!((c.value, c.file), (Some(serde_json::json!({"a": 1})), None));
        let e = ConfigArg::read(Some("{nope"), "config").unwrap_err();
        assert!(e.message.starts_with("the config is not valid JSON"));
        let e = ConfigArg::read(Some("/no/such/file.json"), "source config").unwrap_err();
        assert!(e
            .message
            .contains("cannot read the source config file /no/such/file.json"));
    }

    #[test]
    fn relative_paths_in_path_fields_become_absolute() {
        let schema = serde_json::json!({"properties": {
            "path": {"type": "string", "sluice_path": true},
            "name": {"type": "string"},
            "streams": {"type": "array", "items": {"properties": {
                "path": {"type": "string", "sluice_path": true}}}}
        }});
        let mut config = serde_json::json!({"path": "./out", "name": "./not-a-path",
            "streams": [{"path": "/abs/*.csv"}, {"path": "in/*.csv"}]});
        let changes = absolute_paths(&schema, &mut config);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config["path"], cwd.join("out").to_string_lossy().as_ref());
        assert_eq!(config["name"], "./not-a-path");
        assert_eq!(config["streams"][0]["path"], "/abs/*.csv");
        assert_eq!(
            config["streams"][1]["path"],
            cwd.join("in/*.csv").to_string_lossy().as_ref()
        );
        let fields: Vec<&str> = changes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, ["path", "streams[1].path"]);
    }

    #[test]
    fn state_files_missing_or_empty_are_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(read_state(&p).unwrap(), None);
        std::fs::write(&p, "  \n").unwrap();
        assert_eq!(read_state(&p).unwrap(), None);
        std::fs::write(&p, "[{").unwrap();
        let e = read_state(&p).unwrap_err();
        assert!(e.message.contains("is not valid JSON"), "{}", e.message);
        write_state(&p, &serde_json::json!([{"type": "LEGACY"}])).unwrap();
        assert_eq!(
            read_state(&p).unwrap(),
            Some(serde_json::json!([{"type": "LEGACY"}]))
        );
    }
}
