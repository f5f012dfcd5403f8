//! `sync`: one sync, inline, from connector references and configs. The
//! caller sends its configs, catalog and state as values; committed states
//! and connectors' config updates go back to it as events.

use super::catalog::{self, Generation, StreamSelection};
use super::configs::{ConfigUpdates, Keep, Slot};
use super::{config_or_empty, Call, Service};
use crate::api::{ApiError, Context as _, Event, SyncAnswer, SyncRequest};
use crate::connector::{LogSink, Role};
use crate::error::UserError;
use crate::protocol::{ConfiguredAirbyteCatalog, ConnectorSpecification, StateSnapshot};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::Mapping;
use crate::sync::{self as engine, NoStateSink, StateSink, SyncPlan};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How many inline sync logs are kept in the logs directory.
const KEEP_LOGS: usize = 100;

impl Service {
    pub async fn sync(&self, req: SyncRequest, call: &Call) -> Result<SyncAnswer, ApiError> {
        let source = self.resolve(&req.source, call).context("the source")?;
        let destination = self
            .resolve(&req.destination, call)
            .context("the destination")?;
        source.plays(Role::Source)?;
        destination.plays(Role::Destination)?;
        // A missing container engine is said before anything is installed.
        source.connector.preflight().await?;
        destination.connector.preflight().await?;
        let source_config = config_or_empty(&req.source_config);
        let destination_config = config_or_empty(&req.destination_config);
        let labels = job_labels();

        // Until the configs are validated, logs go to memory: the log file
        // is named after them and must not see a secret unredacted.
        let early: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(Default::default(), call.echo()));
        let mut scx = self.context(Role::Source, early.clone(), call);
        let mut dcx = self.context(Role::Destination, early.clone(), call);
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

        // Checked before the log file is made: a sync that cannot work
        // leaves no empty log behind.
        let checked: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(secrets.clone(), call.echo()));
        let (scx, dcx) = (
            self.context(Role::Source, checked.clone(), call),
            self.context(Role::Destination, checked, call),
        );
        // Both run to their end, even when one fails: a check stopped
        // half-way (the process exits on the error) may leave a probe file
        // in the destination.
        let (source_checked, destination_checked) = tokio::join!(
            source.check_cheaply(&source_config, &scx, "the source"),
            destination.check_cheaply(&destination_config, &dcx, "the destination")
        );
        source_checked?;
        destination_checked?;
        let log = if req.keep_log {
            crate::fsutil::ensure_private_dir(&self.settings.data_dir)
                .with_context(|| format!("cannot create {}", self.settings.data_dir.display()))?;
            prune_logs(&self.settings.logs_dir(), "sync-", KEEP_LOGS);
            let path = super::one_off_log_path(&self.settings, "sync");
            Arc::new(
                AttemptLog::create(&path, secrets.clone(), call.echo())
                    .with_context(|| format!("cannot create the log file {}", path.display()))?,
            )
        } else {
            Arc::new(AttemptLog::memory(secrets.clone(), call.echo()))
        };
        let mut scx = self.context(Role::Source, log.clone(), call);
        scx.labels = labels.clone();

        let catalog = match req.catalog.clone() {
            Some(c) => {
                if req.sync_mode.is_some()
                    || req.destination_sync_mode.is_some()
                    || !req.sync_modes.is_empty()
                    || !req.destination_sync_modes.is_empty()
                    || !req.cursors.is_empty()
                    || !req.primary_keys.is_empty()
                {
                    return Err(UserError::new(
                        "a configured catalog sets each stream's modes, cursor and primary key; \
                         the mode, cursor and key options would be ignored",
                    )
                    .hint("set them in the catalog file, or leave out --catalog")
                    .into());
                }
                let mut c = catalog::filter(c, &req.streams)?;
                for s in &mut c.streams {
                    catalog::select_configured_fields(s, &req.selected_fields)?;
                }
                c
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
                    &StreamSelection {
                        streams: req.streams.clone(),
                        sync_mode: req.sync_mode,
                        destination_sync_mode: req.destination_sync_mode,
                        cursors: req.cursors.clone(),
                        primary_keys: req.primary_keys.clone(),
                        sync_modes: req.sync_modes.clone(),
                        destination_sync_modes: req.destination_sync_modes.clone(),
                        selected_fields: req.selected_fields.clone(),
                    },
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
            fields: req.selected_fields.clone(),
        };
        mapping
            .destination_catalog(&catalog)
            .map_err(UserError::new)?;

        let state = match &req.state {
            Some(value) => StateSnapshot::from_file_value(value.clone()).map_err(|e| {
                UserError::new(format!("the state is not valid: {e}"))
                    .hint("a state is what Airbyte passes to --state: an array of state messages, or a legacy state object")
            })?,
            None => None,
        };
        if let Some(snapshot) = &state {
            super::jobs::state_streams_known(snapshot, &catalog, "this sync")?;
        }
        let state_sink: Arc<dyn StateSink> = if req.keeps_state {
            Arc::new(StateEvents(call.clone()))
        } else {
            Arc::new(NoStateSink)
        };
        let config_sink = Arc::new(ConfigUpdates {
            source: caller_slot(
                call,
                Role::Source,
                req.keeps_configs.source,
                source_spec,
                &source_config,
            ),
            destination: caller_slot(
                call,
                Role::Destination,
                req.keeps_configs.destination,
                destination_spec,
                &destination_config,
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
            max_line_bytes: usize::try_from(req.max_line_bytes).unwrap_or(usize::MAX),
            labels,
            run: call.run.clone(),
        };
        let hooks = engine::SyncHooks {
            log: log.clone(),
            observer: Arc::new(call.clone()),
            state_sink,
            config_sink,
            cancel: call.cancel.clone(),
            grace: Duration::from_secs(10),
        };
        let mut report = engine::run(plan, hooks).await;
        if let Some(f) = &mut report.failure {
            f.message = log.redact(&f.message);
        }
        Ok(SyncAnswer {
            status: report.status,
            failure: report.failure,
            streams: report.streams,
            records: report.records,
            bytes: report.bytes,
            records_committed: report.records_committed,
            duration_ms: report.duration_ms,
            lines_skipped: report.lines_skipped,
            records_dropped: report.records_dropped,
            state_committed: report.state_committed,
            log_file: log.path().map(|p| p.display().to_string()),
        })
    }
}

/// A config the caller keeps: an update goes back to it as an event.
fn caller_slot(
    call: &Call,
    role: Role,
    kept: bool,
    spec: ConnectorSpecification,
    current: &Value,
) -> Slot {
    let call = call.clone();
    let keep: Keep = if kept {
        Box::new(move |config: &Value| {
            call.send(Event::ConfigUpdated {
                role,
                config: config.clone(),
            });
            Ok(())
        })
    } else {
        Box::new(|_: &Value| {
            Err(
                "the config was given inline, not in a file; pass it as a file to keep updates"
                    .into(),
            )
        })
    };
    Slot::new(spec, current.clone(), keep)
}

/// Hands each committed state to the caller, which keeps it.
struct StateEvents(Call);

impl StateSink for StateEvents {
    fn commit(&self, snapshot: &StateSnapshot, _: &engine::Progress) -> Result<(), String> {
        self.0.send(Event::StateCommitted {
            state: snapshot.to_file_value(),
        });
        Ok(())
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
pub(crate) fn check_destination_modes(
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
            .hint(format!(
                "choose one of those with --destination-sync-mode, or for this stream alone with --stream-destination-sync-mode {}=MODE",
                s.stream.name
            )));
        }
    }
    Ok(())
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
