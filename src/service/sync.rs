//! `sync`: one sync, inline, from connector references and configs.

use super::catalog::{self, Generation, StreamSelection};
use super::{ConfigInput, Service, Ui};
use crate::connector::config::{self, Secrets};
use crate::connector::{LogSink, Role};
use crate::error::UserError;
use crate::protocol::ConnectorSpecification;
use crate::protocol::{ConfiguredAirbyteCatalog, StateSnapshot};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::{Mapping, NamespaceRule};
use crate::sync::{self as engine, ConfigSink, NoStateSink, StateSink, SyncPlan, SyncReport};
use anyhow::Context as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub source: String,
    pub source_config: ConfigInput,
    pub destination: String,
    pub destination_config: ConfigInput,
    pub selection: StreamSelection,
    pub state_file: Option<PathBuf>,
    pub catalog_file: Option<PathBuf>,
    pub namespace: NamespaceRule,
    pub prefix: String,
    pub max_line_bytes: usize,
    pub log_file: Option<PathBuf>,
}

/// What a sync did, with where to look for more.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncOutcome {
    #[serde(flatten)]
    pub report: SyncReport,
    pub log_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
}

/// How many inline sync logs are kept in the logs directory.
const KEEP_LOGS: usize = 100;

impl Service {
    pub async fn sync(&self, req: SyncRequest, ui: Ui) -> anyhow::Result<SyncOutcome> {
        let source = self.resolve(&req.source).context("the source")?;
        let destination = self.resolve(&req.destination).context("the destination")?;
        // A missing container engine is said before anything is installed.
        source.connector.preflight().await?;
        destination.connector.preflight().await?;
        let source_config = req.source_config.load("source config")?;
        let destination_config = req.destination_config.load("destination config")?;
        let labels = job_labels();

        // Until the configs are validated, logs go to memory: the log file
        // is named after them and must not see a secret unredacted.
        let early: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(Secrets::default(), ui.echo()));
        let mut scx = self.context(Role::Source, early.clone(), &ui);
        let mut dcx = self.context(Role::Destination, early.clone(), &ui);
        scx.labels = labels.clone();
        dcx.labels = labels.clone();
        let (source_spec, destination_spec) = tokio::try_join!(
            self.spec_of(&source, &scx),
            self.spec_of(&destination, &dcx)
        )?;
        let mut secrets = Service::validate(&source_spec, &source_config, "the source config")?;
        Service::validate(
            &destination_spec,
            &destination_config,
            "the destination config",
        )?;
        secrets.add_config(
            &destination_spec.connection_specification,
            &destination_config,
        );

        let log_path = match &req.log_file {
            Some(p) => p.clone(),
            None => {
                crate::fsutil::ensure_private_dir(&self.settings.data_dir).with_context(|| {
                    format!("cannot create {}", self.settings.data_dir.display())
                })?;
                prune_logs(&self.settings.logs_dir(), "sync-", KEEP_LOGS);
                super::one_off_log_path(&self.settings, "sync")
            }
        };
        let log = Arc::new(
            AttemptLog::create(&log_path, secrets.clone(), ui.echo())
                .with_context(|| format!("cannot create the log file {}", log_path.display()))?,
        );
        let mut scx = self.context(Role::Source, log.clone(), &ui);
        scx.labels = labels.clone();

        let catalog = match &req.catalog_file {
            Some(path) => {
                let c = read_catalog(path)?;
                catalog::filter(c, &req.selection.streams)?
            }
            None => {
                let discovered = source
                    .connector
                    .discover(&source_config, &scx)
                    .await
                    .with_context(|| {
                        format!("cannot discover the streams of {}", source.reference)
                    })?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(1);
                catalog::configure(
                    &discovered,
                    &req.selection,
                    Generation {
                        sync_id: now,
                        generation_id: now,
                    },
                )?
            }
        };
        check_destination_modes(&destination_spec, &catalog)?;
        let mapping = Mapping {
            namespace: req.namespace.clone(),
            prefix: req.prefix.clone(),
        };
        mapping
            .destination_catalog(&catalog)
            .map_err(UserError::new)?;

        let state = match &req.state_file {
            Some(path) => read_state_file(path)?,
            None => None,
        };
        let state_sink: Arc<dyn StateSink> = match &req.state_file {
            Some(path) => Arc::new(StateFile(path.clone())),
            None => Arc::new(NoStateSink),
        };
        let config_sink = Arc::new(FileConfigs {
            source: (
                req.source_config.clone(),
                source_spec.clone(),
                Mutex::new(source_config.clone()),
            ),
            destination: (
                req.destination_config.clone(),
                destination_spec.clone(),
                Mutex::new(destination_config.clone()),
            ),
            log: log.clone(),
        });
        let plan = SyncPlan {
            source: source.connector.clone(),
            source_config,
            destination: destination.connector.clone(),
            destination_config,
            catalog,
            mapping,
            state,
            max_line_bytes: req.max_line_bytes,
            labels,
            run: self.run.clone(),
        };
        let hooks = engine::SyncHooks {
            log: log.clone(),
            observer: ui.observer.clone(),
            state_sink,
            config_sink,
            cancel: ui.cancel.clone(),
            grace: Duration::from_secs(10),
        };
        let mut report = engine::run(plan, hooks).await;
        if let Some(f) = &mut report.failure {
            f.message = log.redact(&f.message);
        }
        Ok(SyncOutcome {
            report,
            log_file: Some(log_path),
            state_file: req.state_file.clone(),
        })
    }
}

/// Labels for what an inline sync starts. There is no job store yet, so
/// the job is named after this process and the time; the sweeper tells
/// whether it still runs from the owner labels the runtimes add.
fn job_labels() -> Vec<(String, String)> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    vec![
        (
            "sluice.job".into(),
            format!("inline-{}-{millis}", std::process::id()),
        ),
        ("sluice.attempt".into(), "1".into()),
    ]
}

/// Refuses a destination sync mode the destination says it does not support.
fn check_destination_modes(
    spec: &ConnectorSpecification,
    catalog: &ConfiguredAirbyteCatalog,
) -> Result<(), UserError> {
    if spec.supported_destination_sync_modes.is_empty() {
        return Ok(());
    }
    for s in &catalog.streams {
        if !spec
            .supported_destination_sync_modes
            .contains(&s.destination_sync_mode)
        {
            return Err(UserError::new(format!(
                "the destination does not support {} (stream `{}`); it supports: {}",
                s.destination_sync_mode.as_str(),
                s.stream.descriptor(),
                spec.supported_destination_sync_modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint("choose one of those with --destination-sync-mode"));
        }
    }
    Ok(())
}

fn read_catalog(path: &Path) -> Result<ConfiguredAirbyteCatalog, UserError> {
    let bytes = std::fs::read(path)
        .map_err(|e| UserError::new(format!("cannot read the catalog {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        UserError::new(format!(
            "the catalog {} is not a configured catalog: {e}",
            path.display()
        ))
        .hint("a configured catalog is {\"streams\": [{\"stream\": {...}, \"sync_mode\": ..., \"destination_sync_mode\": ...}]}; `sluice connector discover` prints a source's streams")
    })
}

/// The state in a state file; a missing or empty file is no state.
pub fn read_state_file(path: &Path) -> Result<Option<StateSnapshot>, UserError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(UserError::new(format!(
                "cannot read the state file {}: {e}",
                path.display()
            )))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        UserError::new(format!(
            "the state file {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    StateSnapshot::from_file_value(value).map_err(|e| {
        UserError::new(format!("the state file {} is not valid: {e}", path.display()))
            .hint("a state file is what Airbyte passes to --state: an array of state messages, or a legacy state object")
    })
}

/// Rewrites the state file, atomically, after each commit.
struct StateFile(PathBuf);

impl StateSink for StateFile {
    fn commit(&self, snapshot: &StateSnapshot) -> Result<(), String> {
        let mut bytes =
            serde_json::to_vec_pretty(&snapshot.to_file_value()).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        crate::fsutil::write_atomic(&self.0, &bytes, 0o600)
            .map_err(|e| format!("{}: {e}", self.0.display()))
    }
}

type ConfigSlot = (ConfigInput, ConnectorSpecification, Mutex<Value>);

/// Saves CONTROL config updates to the config file they came from.
struct FileConfigs {
    source: ConfigSlot,
    destination: ConfigSlot,
    log: Arc<AttemptLog>,
}

impl ConfigSink for FileConfigs {
    fn update(&self, role: Role, update: &Value) -> Result<(), String> {
        let (input, spec, current) = match role {
            Role::Source => &self.source,
            Role::Destination => &self.destination,
        };
        let schema = &spec.connection_specification;
        let mut merged = current.lock().expect("config lock");
        let mut next = merged.clone();
        if let (Some(obj), Some(upd)) = (next.as_object_mut(), update.as_object()) {
            for (k, v) in upd {
                obj.insert(k.clone(), v.clone());
            }
        }
        self.log.add_secrets(schema, &next);
        config::validate(schema, &next, "the updated config").map_err(|e| e.to_string())?;
        match input {
            ConfigInput::File(path) => {
                let mut bytes = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
                bytes.push(b'\n');
                let mode = std::fs::metadata(path)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                    .unwrap_or(0o600);
                crate::fsutil::write_atomic(path.as_ref(), &bytes, mode)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                *merged = next;
                Ok(())
            }
            _ => Err(
                "the config was given inline, not in a file; pass it as a file to keep updates"
                    .into(),
            ),
        }
    }
}

/// Keeps the newest `keep` files named `prefix*` in `dir`.
fn prune_logs(dir: &Path, prefix: &str, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if logs.len() < keep {
        return;
    }
    logs.sort();
    for (_, p) in &logs[..logs.len() + 1 - keep] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_missing_or_empty_are_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(read_state_file(&p).unwrap(), None);
        std::fs::write(&p, "  \n").unwrap();
        assert_eq!(read_state_file(&p).unwrap(), None);
        std::fs::write(&p, "[{\"type\":\"STREAM\"}]").unwrap();
        let e = read_state_file(&p).unwrap_err();
        assert!(
            e.message.contains("is not valid: state entry 0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            let p = dir.path().join(format!("sync-{i}.log"));
            std::fs::write(&p, "x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        prune_logs(dir.path(), "sync-", 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // Room is made for the log about to be written.
        assert_eq!(left, vec!["sync-3.log", "sync-4.log"]);
    }
}
