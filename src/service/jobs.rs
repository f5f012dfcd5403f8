//! Jobs of managed connections: sync, reset and refresh, each recorded with
//! its attempts in the job store; failed attempts retried with backoff,
//! each resuming from the last state committed to the store. Also the
//! connection's state, job listings and attempt logs.

use super::managed::{store_error, ConnectionSpec, SchemaChangePolicy};
use super::{Service, Ui};
use crate::connector::config::{self, Secrets};
use crate::connector::{self, Connector, LogSink, Role};
use crate::error::UserError;
use crate::model::{
    AttemptStatus, ConnectionStatus, Failure, FailureOrigin, FailureType, JobStatus,
};
use crate::owner::{Liveness, Owner};
use crate::protocol::{
    AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectorSpecification, DestinationSyncMode,
    LogLevel, StateSnapshot, StreamDescriptor, SyncMode,
};
use crate::store::{self, Actor, ActorFields, ActorKind, AttemptEnd, Job, JobFilter, Store};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::Mapping;
use crate::sync::{self as engine, ConfigSink, StateSink, SyncPlan, SyncStatus};
use anyhow::Context as _;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::model::JobKind;

/// When to give up, and how long to wait between attempts (Airbyte's rules:
/// attempts that committed nothing count towards a small limit, and wait
/// longer each time; an attempt that committed progress resets that count).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in a row that committed nothing, before giving up.
    pub max_failed_in_a_row: u32,
    /// Attempts in all, before giving up.
    pub max_attempts: u32,
    /// The wait after the first attempt that committed nothing; tripled
    /// after each further one.
    pub backoff: Duration,
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_failed_in_a_row: 5,
            max_attempts: 20,
            backoff: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(30 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, after `failed_in_a_row` attempts
    /// that committed nothing (none after one that committed progress).
    pub fn delay(&self, failed_in_a_row: u32) -> Duration {
        if failed_in_a_row == 0 {
            return Duration::ZERO;
        }
        let factor = 3u32.saturating_pow(failed_in_a_row - 1);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }
}

/// A job request.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub connection: String,
    pub kind: JobKind,
    /// For a reset: only these streams (all when empty).
    pub streams: Vec<String>,
    pub retry: RetryPolicy,
}

/// A job with its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub attempts: Vec<store::Attempt>,
}

pub use crate::model::SchemaChange;

/// The differences between a configured catalog and a fresh discovery.
pub fn schema_changes(
    configured: &ConfiguredAirbyteCatalog,
    discovered: &AirbyteCatalog,
) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    let change = |stream: &StreamDescriptor, change: String, breaking: bool| SchemaChange {
        stream: stream.to_string(),
        change,
        breaking,
    };
    for c in &configured.streams {
        let d = c.stream.descriptor();
        let Some(now) = discovered.streams.iter().find(|s| s.descriptor() == d) else {
            out.push(change(&d, "the stream is gone".into(), true));
            continue;
        };
        let old = properties(&c.stream.json_schema);
        let new = properties(&now.json_schema);
        let key_fields: Vec<&String> = c.primary_key.iter().filter_map(|p| p.first()).collect();
        let cursor = (c.sync_mode == SyncMode::Incremental
            && c.stream.source_defined_cursor != Some(true))
        .then(|| c.cursor_field.first())
        .flatten();
        for (field, schema) in &old {
            match new.iter().find(|(f, _)| f == field) {
                None if key_fields.contains(&field) => out.push(change(
                    &d,
                    format!("primary key field `{field}` is gone"),
                    true,
                )),
                None if cursor == Some(field) => {
                    out.push(change(&d, format!("cursor field `{field}` is gone"), true))
                }
                None => out.push(change(&d, format!("column `{field}` removed"), false)),
                Some((_, s)) if s != schema => {
                    out.push(change(&d, format!("column `{field}` changed type"), false))
                }
                Some(_) => {}
            }
        }
        for (field, _) in &new {
            if !old.iter().any(|(f, _)| f == field) {
                out.push(change(&d, format!("column `{field}` added"), false));
            }
        }
    }
    for s in &discovered.streams {
        let d = s.descriptor();
        if !configured
            .streams
            .iter()
            .any(|c| c.stream.descriptor() == d)
        {
            out.push(change(&d, "new stream".into(), false));
        }
    }
    out
}

fn properties(schema: &Value) -> Vec<(String, Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Commits each state the destination confirmed to the store, as the
/// `--state` file does for an inline sync: a crash keeps the last one.
struct StoreState {
    store: Store,
    connection_id: i64,
    handle: tokio::runtime::Handle,
}

impl StateSink for StoreState {
    fn commit(&self, snapshot: &StateSnapshot) -> Result<(), String> {
        // The engine calls this from a blocking thread.
        self.handle
            .block_on(self.store.put_state(
                self.connection_id,
                snapshot.state_type(),
                &snapshot.to_file_value(),
            ))
            .map_err(|e| e.to_string())
    }
}

/// Saves a connector's CONTROL config update to its source or destination.
struct StoreConfigs {
    store: Store,
    handle: tokio::runtime::Handle,
    source: (Actor, ConnectorSpecification, Mutex<Value>),
    destination: (Actor, ConnectorSpecification, Mutex<Value>),
    log: Arc<AttemptLog>,
}

impl ConfigSink for StoreConfigs {
    fn update(&self, role: Role, update: &Value) -> Result<(), String> {
        let (actor, spec, current) = match role {
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
        if tokio::runtime::Handle::current().runtime_flavor()
            != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return Err("the config cannot be saved from this runtime".into());
        }
        let fields = ActorFields {
            name: actor.name.clone(),
            connector: actor.connector.clone(),
            config: next.clone(),
            secret_paths: config::secret_pointers(schema, &next),
        };
        tokio::task::block_in_place(|| {
            self.handle
                .block_on(self.store.update_actor(actor.kind, &fields))
        })
        .map_err(|e| e.to_string())?;
        *merged = next;
        Ok(())
    }
}

/// What a job runs against, resolved once.
struct Prepared {
    source: Arc<dyn Connector>,
    source_actor: Actor,
    source_spec: ConnectorSpecification,
    destination: Arc<dyn Connector>,
    destination_actor: Actor,
    destination_spec: ConnectorSpecification,
    secrets: Secrets,
}

impl Service {
    /// The directory of a job's attempt logs.
    fn job_dir(&self, job: i64) -> PathBuf {
        self.settings.data_dir.join("jobs").join(job.to_string())
    }

    async fn prepare(&self, c: &store::Connection, ui: &Ui) -> anyhow::Result<Prepared> {
        let s = self.store().await?;
        let source_actor = s
            .get_actor_by_id(ActorKind::Source, c.source_id)
            .await
            .map_err(store_error)?;
        let destination_actor = s
            .get_actor_by_id(ActorKind::Destination, c.destination_id)
            .await
            .map_err(store_error)?;
        let source = self
            .resolve(&source_actor.connector)
            .with_context(|| format!("source `{}`", source_actor.name))?;
        let destination = self
            .resolve(&destination_actor.connector)
            .with_context(|| format!("destination `{}`", destination_actor.name))?;
        source.connector.preflight().await?;
        destination.connector.preflight().await?;
        let early: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(Secrets::default(), ui.echo()));
        let scx = self.context(Role::Source, early.clone(), ui);
        let dcx = self.context(Role::Destination, early, ui);
        let (source_spec, destination_spec) = tokio::try_join!(
            self.spec_of(&source, &scx),
            self.spec_of(&destination, &dcx)
        )?;
        let mut secrets = Service::validate(
            &source_spec,
            &source_actor.config,
            &format!("the config of source `{}`", source_actor.name),
        )?;
        Service::validate(
            &destination_spec,
            &destination_actor.config,
            &format!("the config of destination `{}`", destination_actor.name),
        )?;
        secrets.add_config(
            &destination_spec.connection_specification,
            &destination_actor.config,
        );
        Ok(Prepared {
            source: source.connector,
            source_actor,
            source_spec,
            destination: destination.connector,
            destination_actor,
            destination_spec,
            secrets,
        })
    }

    /// Runs a job of a connection now, to its end.
    pub async fn connection_job(&self, req: JobRequest, ui: Ui) -> anyhow::Result<JobView> {
        let c = self.connection(&req.connection).await?;
        // Clearing data is allowed on an inactive connection; reading is not.
        if req.kind != JobKind::Reset && c.status != ConnectionStatus::Active {
            return Err(
                UserError::new(format!("connection `{}` is inactive", c.name))
                    .hint(format!(
                        "enable it with `sluice connection enable {}`",
                        c.name
                    ))
                    .into(),
            );
        }
        let catalog = c.catalog.clone();
        let reset_streams = selected(&catalog, &req.streams)?;
        let prepared = self.prepare(&c, &ui).await?;
        let store = self.store().await?.clone();
        let owner = this_owner();
        let job = match store.create_job(c.id, req.kind, &owner).await {
            Err(store::StoreError::JobRunning { .. }) => {
                // Its process may be gone (killed, or the machine restarted).
                self.end_orphans(&store, &c).await?;
                store.create_job(c.id, req.kind, &owner).await
            }
            other => other,
        }
        .map_err(store_error)?;
        let jobs_dir = self.settings.data_dir.join("jobs");
        crate::fsutil::ensure_private_dir(&self.settings.data_dir)
            .and_then(|()| crate::fsutil::ensure_private_dir(&jobs_dir))
            .with_context(|| format!("cannot create {}", jobs_dir.display()))?;
        let status = match self
            .run_job(
                &store,
                &c,
                catalog,
                reset_streams,
                &prepared,
                &job,
                &req,
                &ui,
            )
            .await
        {
            Ok(status) => status,
            Err(e) => {
                // What failed before or between attempts is recorded too.
                let message = prepared.secrets.redact(&format!("{e:#}")).into_owned();
                let attempts = store.list_attempts(job.id).await.map_err(store_error)?;
                let number = attempts.len() as i64 + 1;
                let log = self.job_dir(job.id).join(format!("attempt-{number}.log"));
                store
                    .start_attempt(job.id, number, &log)
                    .await
                    .map_err(store_error)?;
                let failure_type = if crate::error::classify(&e).0 == crate::error::ExitClass::Usage
                {
                    FailureType::ConfigError
                } else {
                    FailureType::SystemError
                };
                store
                    .finish_attempt(
                        job.id,
                        number,
                        &AttemptEnd {
                            status: AttemptStatus::Failed,
                            stats: Vec::new(),
                            records: 0,
                            bytes: 0,
                            records_committed: 0,
                            failure: Some(Failure::new(
                                FailureOrigin::Platform,
                                failure_type,
                                message,
                            )),
                        },
                    )
                    .await
                    .map_err(store_error)?;
                JobStatus::Failed
            }
        };
        store
            .finish_job(job.id, status)
            .await
            .map_err(store_error)?;
        self.job_get(job.id).await
    }

    /// Ends the connection's running jobs whose process on this machine is
    /// gone; refuses while one still runs (here, or on another machine).
    async fn end_orphans(&self, store: &Store, c: &store::Connection) -> anyhow::Result<()> {
        let running = store
            .list_jobs(&JobFilter {
                connection_id: Some(c.id),
                status: Some(JobStatus::Running),
                limit: 0,
            })
            .await
            .map_err(store_error)?;
        for job in running {
            let owner = job.owner.clone().unwrap_or_default();
            let shown = Owner::from_text(&owner)
                .map(|o| format!("pid {} on {}", o.pid, o.host))
                .unwrap_or_else(|| owner.clone());
            match owner_liveness(&owner) {
                Liveness::Gone => {
                    let why = format!("the sluice process that ran this job ({shown}) is gone");
                    store.abandon_job(job.id, &why).await.map_err(store_error)?;
                }
                alive => {
                    let hint = match alive {
                        Liveness::Running => format!(
                            "wait for it to end (`sluice job get {}`), or stop that process ({shown})",
                            job.id
                        ),
                        _ => format!(
                            "it runs where this sluice cannot see ({shown}); wait for it to end (`sluice job get {}`)",
                            job.id
                        ),
                    };
                    return Err(UserError::new(format!(
                        "connection `{}` already has a running job ({}, job {})",
                        c.name, job.kind, job.id
                    ))
                    .hint(hint)
                    .into());
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_job(
        &self,
        store: &Store,
        c: &store::Connection,
        mut catalog: ConfiguredAirbyteCatalog,
        reset_streams: Vec<StreamDescriptor>,
        p: &Prepared,
        job: &Job,
        req: &JobRequest,
        ui: &Ui,
    ) -> anyhow::Result<JobStatus> {
        let mapping = Mapping {
            namespace: c.namespace.clone(),
            prefix: c.prefix.clone(),
        };
        let mut source = p.source.clone();
        let mut source_config = p.source_actor.config.clone();
        match req.kind {
            JobKind::Sync | JobKind::Refresh => {
                catalog = self.follow_schema(store, c, catalog, p, job, ui).await?;
                if req.kind == JobKind::Refresh {
                    store.delete_state(c.id).await.map_err(store_error)?;
                }
            }
            JobKind::Reset => {
                catalog
                    .streams
                    .retain(|s| reset_streams.contains(&s.stream.descriptor()));
                for s in &mut catalog.streams {
                    s.sync_mode = SyncMode::FullRefresh;
                    s.destination_sync_mode = DestinationSyncMode::Overwrite;
                }
                clear_state(store, c.id, &reset_streams, req.streams.is_empty()).await?;
                source = connector::builtin::empty_source();
                source_config = json!({});
            }
        }
        // Generations, as Airbyte's platform numbers them: a stream whose
        // old data goes when this job lands starts a new generation.
        let mut stored = c.catalog.clone();
        for s in &mut catalog.streams {
            let current = stored
                .streams
                .iter()
                .find(|o| o.stream.descriptor() == s.stream.descriptor())
                .and_then(|o| o.generation_id)
                .unwrap_or(0);
            let truncate = req.kind != JobKind::Sync
                || s.destination_sync_mode == DestinationSyncMode::Overwrite;
            let generation = if truncate { current + 1 } else { current };
            s.generation_id = Some(generation);
            s.minimum_generation_id = Some(if truncate { generation } else { 0 });
            s.sync_id = Some(job.id);
        }
        if req.kind == JobKind::Sync || req.kind == JobKind::Refresh {
            stored = catalog.clone();
        } else {
            for s in &mut stored.streams {
                if let Some(n) = catalog
                    .streams
                    .iter()
                    .find(|n| n.stream.descriptor() == s.stream.descriptor())
                {
                    s.generation_id = n.generation_id;
                }
            }
        }
        store
            .set_connection_catalog(c.id, &stored)
            .await
            .map_err(store_error)?;
        if catalog.streams.is_empty() {
            return Ok(JobStatus::Succeeded);
        }

        let handle = tokio::runtime::Handle::current();
        let mut failed_in_a_row = 0u32;
        let mut number = 0i64;
        loop {
            number += 1;
            let log_path = self.job_dir(job.id).join(format!("attempt-{number}.log"));
            store
                .start_attempt(job.id, number, &log_path)
                .await
                .map_err(store_error)?;
            let log = Arc::new(
                AttemptLog::create(&log_path, p.secrets.clone(), ui.echo()).with_context(|| {
                    format!("cannot create the log file {}", log_path.display())
                })?,
            );
            log.log(
                "sluice",
                LogLevel::Info,
                &format!(
                    "Job {} ({}) of connection `{}`, attempt {number}.",
                    job.id,
                    req.kind.as_str(),
                    c.name
                ),
            );
            let state = match store.get_state(c.id).await.map_err(store_error)? {
                Some(s) => StateSnapshot::from_file_value(s.state)
                    .with_context(|| format!("connection `{}` has a bad stored state", c.name))?,
                None => None,
            };
            let labels = vec![
                ("sluice.job".to_string(), job.id.to_string()),
                ("sluice.attempt".to_string(), number.to_string()),
            ];
            let plan = SyncPlan {
                source: source.clone(),
                source_config: source_config.clone(),
                destination: p.destination.clone(),
                destination_config: p.destination_actor.config.clone(),
                catalog: catalog.clone(),
                mapping: mapping.clone(),
                state,
                max_line_bytes: crate::protocol::codec::DEFAULT_MAX_LINE_BYTES,
                labels,
                run: self.run.clone(),
            };
            let hooks = engine::SyncHooks {
                log: log.clone(),
                observer: ui.observer.clone(),
                state_sink: Arc::new(StoreState {
                    store: store.clone(),
                    connection_id: c.id,
                    handle: handle.clone(),
                }),
                config_sink: Arc::new(StoreConfigs {
                    store: store.clone(),
                    handle: handle.clone(),
                    source: (
                        p.source_actor.clone(),
                        p.source_spec.clone(),
                        Mutex::new(p.source_actor.config.clone()),
                    ),
                    destination: (
                        p.destination_actor.clone(),
                        p.destination_spec.clone(),
                        Mutex::new(p.destination_actor.config.clone()),
                    ),
                    log: log.clone(),
                }),
                cancel: ui.cancel.clone(),
                grace: Duration::from_secs(10),
            };
            let report = engine::run(plan, hooks).await;
            let failure = match (report.status, &report.failure) {
                (SyncStatus::Cancelled, _) => Some(Failure::new(
                    FailureOrigin::Platform,
                    FailureType::ManualCancellation,
                    "the job was cancelled",
                )),
                (_, Some(f)) => Some(Failure {
                    message: log.redact(&f.message),
                    ..f.clone()
                }),
                (SyncStatus::Failed, None) => Some(Failure::new(
                    FailureOrigin::Platform,
                    FailureType::SystemError,
                    "the attempt failed without a reason",
                )),
                _ => None,
            };
            store
                .finish_attempt(
                    job.id,
                    number,
                    &AttemptEnd {
                        status: report.status.into(),
                        stats: report.streams.clone(),
                        records: report.records as i64,
                        bytes: report.bytes as i64,
                        records_committed: report.records_committed as i64,
                        failure: failure.clone(),
                    },
                )
                .await
                .map_err(store_error)?;
            let Some(failure) = failure.filter(|_| report.status == SyncStatus::Failed) else {
                return Ok(report.status.into());
            };
            let why = &failure.message;
            if failure.failure_type == FailureType::ConfigError {
                log.log(
                    "sluice",
                    LogLevel::Error,
                    "The attempt failed with a config error; not retrying.",
                );
                return Ok(JobStatus::Failed);
            }
            if report.state_committed {
                failed_in_a_row = 0;
            } else {
                failed_in_a_row += 1;
            }
            if failed_in_a_row >= req.retry.max_failed_in_a_row
                || number >= req.retry.max_attempts as i64
            {
                ui.observer.event(
                    LogLevel::Error,
                    &format!(
                        "Attempt {number} failed: {why}. Giving up after {number} attempt(s)."
                    ),
                );
                return Ok(JobStatus::Failed);
            }
            let delay = req.retry.delay(failed_in_a_row);
            ui.observer.event(
                LogLevel::Warn,
                &format!(
                    "Attempt {number} failed: {why}. Retrying in {} from the last committed state.",
                    humantime::format_duration(delay)
                ),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = ui.cancel.cancelled() => return Ok(JobStatus::Cancelled),
            }
        }
    }

    /// Compares the connection's catalog with the source's streams now and
    /// follows the connection's policy; a breaking change is an error.
    async fn follow_schema(
        &self,
        store: &Store,
        c: &store::Connection,
        catalog: ConfiguredAirbyteCatalog,
        p: &Prepared,
        job: &Job,
        ui: &Ui,
    ) -> anyhow::Result<ConfiguredAirbyteCatalog> {
        let discovered = self.discover_actor(&p.source_actor, ui).await?;
        let changes = schema_changes(&catalog, &discovered);
        if changes.is_empty() {
            return Ok(catalog);
        }
        store
            .set_job_changes(job.id, &changes)
            .await
            .map_err(store_error)?;
        let breaking: Vec<String> = changes
            .iter()
            .filter(|ch| ch.breaking)
            .map(|ch| format!("stream `{}`: {}", ch.stream, ch.change))
            .collect();
        if !breaking.is_empty() {
            return Err(UserError::new(format!(
                "the source's schema changed in a way connection `{}` cannot follow: {}",
                c.name,
                breaking.join("; ")
            ))
            .hint(format!(
                "update the connection to the source's streams (`sluice connection update {} --streams ...`)",
                c.name
            ))
            .into());
        }
        let spec = ConnectionSpec::of(c);
        let mut next = catalog.clone();
        match spec.schema_change {
            SchemaChangePolicy::Ignore => return Ok(catalog),
            SchemaChangePolicy::Disable => {
                store
                    .set_connection_status(&c.name, ConnectionStatus::Inactive)
                    .await
                    .map_err(store_error)?;
                return Err(UserError::new(format!(
                    "the source's schema changed and connection `{}` disables itself on changes; it is now inactive",
                    c.name
                ))
                .hint(format!("`sluice job get {}` shows the changes; `sluice connection enable {}` turns it back on", job.id, c.name))
                .into());
            }
            SchemaChangePolicy::PropagateColumns | SchemaChangePolicy::PropagateFully => {
                for s in &mut next.streams {
                    if let Some(now) = discovered
                        .streams
                        .iter()
                        .find(|d| d.descriptor() == s.stream.descriptor())
                    {
                        s.stream = now.clone();
                    }
                }
            }
        }
        if spec.schema_change == SchemaChangePolicy::PropagateFully {
            let new: Vec<String> = changes
                .iter()
                .filter(|ch| ch.change == "new stream")
                .map(|ch| ch.stream.clone())
                .collect();
            let mut added_names = Vec::new();
            let mut notes = changes.clone();
            for name in new {
                // Each new stream on its own: one that cannot be synced the
                // connection's way is left out, not the whole job failed.
                let one = super::catalog::configure(
                    &discovered,
                    &super::catalog::StreamSelection {
                        streams: vec![name.clone()],
                        sync_mode: spec.sync_mode,
                        destination_sync_mode: spec.destination_sync_mode,
                    },
                    super::catalog::Generation {
                        sync_id: job.id,
                        generation_id: 0,
                    },
                );
                match one {
                    Ok(added) => {
                        next.streams.extend(added.streams);
                        added_names.push(name);
                    }
                    Err(e) => {
                        for n in notes
                            .iter_mut()
                            .filter(|n| n.stream == name && n.change == "new stream")
                        {
                            n.change = format!("new stream, not added: {}", e.message);
                        }
                    }
                }
            }
            if notes != changes {
                store
                    .set_job_changes(job.id, &notes)
                    .await
                    .map_err(store_error)?;
            }
            if !spec.streams.is_empty() && !added_names.is_empty() {
                let mut fields = store::ConnectionFields::from(c);
                fields.streams.extend(added_names);
                store
                    .update_connection(&fields)
                    .await
                    .map_err(store_error)?;
            }
        }
        Ok(next)
    }

    pub async fn job_get(&self, id: i64) -> anyhow::Result<JobView> {
        let s = self.store().await?;
        let job = s.get_job(id).await.map_err(store_error)?.ok_or_else(|| {
            anyhow::Error::new(
                UserError::new(format!("there is no job {id}"))
                    .hint("`sluice job list` shows the jobs"),
            )
        })?;
        let attempts = s.list_attempts(id).await.map_err(store_error)?;
        Ok(JobView { job, attempts })
    }

    pub async fn job_list(
        &self,
        connection: Option<&str>,
        status: Option<JobStatus>,
        limit: i64,
    ) -> anyhow::Result<Vec<Job>> {
        let connection_id = match connection {
            Some(name) => Some(self.connection(name).await?.id),
            None => None,
        };
        self.store()
            .await?
            .list_jobs(&JobFilter {
                connection_id,
                status,
                limit,
            })
            .await
            .map_err(store_error)
    }

    /// The log of one attempt (the last when `attempt` is `None`).
    pub async fn job_logs(&self, id: i64, attempt: Option<i64>) -> anyhow::Result<String> {
        let job = self.job_get(id).await?;
        let a = match attempt {
            Some(n) => job.attempts.iter().find(|a| a.number == n),
            None => job.attempts.last(),
        };
        let Some(a) = a else {
            return Err(UserError::new(match attempt {
                Some(n) => format!("job {id} has no attempt {n}"),
                None => format!("job {id} has no attempts"),
            })
            .hint(format!("`sluice job get {id}` shows its attempts"))
            .into());
        };
        let path = a.log_path.clone().unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(UserError::new(format!(
                "the log of job {id}, attempt {} ({path}) is not on this machine",
                a.number
            ))
            .into()),
            Err(e) => Err(anyhow::anyhow!("cannot read {path}: {e}")),
        }
    }

    // -- state --------------------------------------------------------------

    pub async fn state_get(&self, connection: &str) -> anyhow::Result<Option<store::StoredState>> {
        let c = self.connection(connection).await?;
        self.store()
            .await?
            .get_state(c.id)
            .await
            .map_err(store_error)
    }

    /// Replaces the state with `value` (Airbyte's `--state` form), after
    /// checking it and that its streams are the connection's.
    pub async fn state_set(&self, connection: &str, value: Value) -> anyhow::Result<()> {
        let c = self.connection(connection).await?;
        let snapshot = StateSnapshot::from_file_value(value).map_err(|e| {
            UserError::new(format!("the state for connection `{connection}` is not valid: {e}"))
                .hint("a state is what Airbyte passes to --state: an array of state messages, or a legacy state object")
        })?;
        let catalog = &c.catalog;
        let known: Vec<StreamDescriptor> = catalog
            .streams
            .iter()
            .map(|s| s.stream.descriptor())
            .collect();
        let s = self.store().await?;
        let Some(snapshot) = snapshot else {
            s.delete_state(c.id).await.map_err(store_error)?;
            return Ok(());
        };
        let named: Vec<StreamDescriptor> = match &snapshot {
            StateSnapshot::Stream(msgs) => msgs
                .iter()
                .filter_map(|m| m.stream.as_ref().map(|s| s.stream_descriptor.clone()))
                .collect(),
            StateSnapshot::Global(g) => g
                .global
                .iter()
                .flat_map(|g| g.stream_states.iter().map(|s| s.stream_descriptor.clone()))
                .collect(),
            StateSnapshot::Legacy(_) => Vec::new(),
        };
        if let Some(unknown) = named.iter().find(|d| !known.contains(d)) {
            return Err(UserError::new(format!(
                "the state names stream `{unknown}`, which connection `{connection}` does not sync"
            ))
            .hint(format!(
                "its streams are: {}",
                known
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        s.put_state(c.id, snapshot.state_type(), &snapshot.to_file_value())
            .await
            .map_err(store_error)
    }

    /// Clears the state of some streams, or all of it.
    pub async fn state_reset(&self, connection: &str, streams: &[String]) -> anyhow::Result<()> {
        let c = self.connection(connection).await?;
        let chosen = selected(&c.catalog, streams)?;
        clear_state(self.store().await?, c.id, &chosen, streams.is_empty()).await
    }
}

/// This process, as a job's owner.
fn this_owner() -> String {
    Owner::current().to_text()
}

/// Whether the process a job's owner names still runs. Owners written by
/// sluice before owners were whole (`HOST:PID`) are judged by their pid,
/// which is all they have.
fn owner_liveness(owner: &str) -> Liveness {
    if let Some(o) = Owner::from_text(owner) {
        return o.liveness(Owner::current());
    }
    let here = Owner::current();
    match owner.rsplit_once(':') {
        Some((host, pid)) if host == here.host => match pid.parse::<u32>() {
            Ok(pid) if crate::owner::start_time(pid).is_some() => Liveness::Running,
            Ok(_) => Liveness::Gone,
            Err(_) => Liveness::Unknown,
        },
        _ => Liveness::Unknown,
    }
}

/// The descriptors of the named streams of a catalog (all when none named).
fn selected(
    catalog: &ConfiguredAirbyteCatalog,
    names: &[String],
) -> anyhow::Result<Vec<StreamDescriptor>> {
    let all: Vec<StreamDescriptor> = catalog
        .streams
        .iter()
        .map(|s| s.stream.descriptor())
        .collect();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|d| d.to_string() == *n || d.name == *n)
                .cloned()
                .ok_or_else(|| {
                    UserError::new(format!("the connection has no stream `{n}`"))
                        .hint(format!(
                            "its streams are: {}",
                            all.iter()
                                .map(|d| d.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .into()
                })
        })
        .collect()
}

async fn clear_state(
    store: &Store,
    connection_id: i64,
    streams: &[StreamDescriptor],
    all: bool,
) -> anyhow::Result<()> {
    if all {
        store
            .delete_state(connection_id)
            .await
            .map_err(store_error)?;
        return Ok(());
    }
    let Some(stored) = store.get_state(connection_id).await.map_err(store_error)? else {
        return Ok(());
    };
    let snapshot = StateSnapshot::from_file_value(stored.state)
        .map_err(|e| anyhow::anyhow!("the stored state is not valid: {e}"))?;
    match snapshot.and_then(|s| s.without_streams(streams)) {
        Some(left) => store
            .put_state(connection_id, left.state_type(), &left.to_file_value())
            .await
            .map_err(store_error),
        None => store
            .delete_state(connection_id)
            .await
            .map(drop)
            .map_err(store_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AirbyteStream, ConfiguredAirbyteStream, Extra};

    #[test]
    fn owners_are_alive_only_here_and_while_they_run() {
        assert_eq!(owner_liveness(&this_owner()), Liveness::Running);
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let pid = dead.id();
        dead.wait().unwrap();
        let gone = Owner {
            pid,
            ..Owner::current().clone()
        };
        assert_eq!(owner_liveness(&gone.to_text()), Liveness::Gone);
        // A reused pid is not the owner: its start time differs.
        let reused = Owner {
            start: Owner::current().start + 1,
            ..Owner::current().clone()
        };
        assert_eq!(owner_liveness(&reused.to_text()), Liveness::Gone);
        let here = &Owner::current().host;
        assert_eq!(owner_liveness(&format!("{here}:{pid}")), Liveness::Gone);
        assert_eq!(owner_liveness("some-other-host:1"), Liveness::Unknown);
        assert_eq!(owner_liveness("garbage"), Liveness::Unknown);
    }

    #[test]
    fn backoff_triples_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0), Duration::ZERO);
        assert_eq!(p.delay(1), Duration::from_secs(10));
        assert_eq!(p.delay(2), Duration::from_secs(30));
        assert_eq!(p.delay(3), Duration::from_secs(90));
        assert_eq!(p.delay(8), Duration::from_secs(30 * 60));
        assert_eq!(p.delay(40), Duration::from_secs(30 * 60));
        let none = RetryPolicy {
            backoff: Duration::ZERO,
            ..p
        };
        assert_eq!(none.delay(3), Duration::ZERO);
    }

    fn stream(name: &str, props: Value) -> AirbyteStream {
        let mut s = AirbyteStream::new(name, json!({"type": "object", "properties": props}));
        s.supported_sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
        s
    }

    fn configured(s: AirbyteStream, cursor: &str, key: &str) -> ConfiguredAirbyteStream {
        ConfiguredAirbyteStream {
            stream: s,
            sync_mode: SyncMode::Incremental,
            cursor_field: vec![cursor.into()],
            destination_sync_mode: DestinationSyncMode::Append,
            destination_object_name: None,
            primary_key: vec![vec![key.into()]],
            generation_id: None,
            minimum_generation_id: None,
            sync_id: None,
            include_files: None,
            extra: Extra::new(),
        }
    }

    #[test]
    fn schema_changes_are_found_and_classified() {
        let old = ConfiguredAirbyteCatalog {
            streams: vec![configured(
                stream(
                    "users",
                    json!({"id": {"type": "integer"}, "at": {"type": "string"}, "x": {"type": "string"}}),
                ),
                "at",
                "id",
            )],
            extra: Extra::new(),
        };
        let same = AirbyteCatalog {
            streams: vec![old.streams[0].stream.clone()],
            extra: Extra::new(),
        };
        assert!(schema_changes(&old, &same).is_empty());

        let grown = AirbyteCatalog {
            streams: vec![
                stream(
                    "users",
                    json!({"id": {"type": "integer"}, "at": {"type": "string"}, "x": {"type": "number"}, "y": {}}),
                ),
                stream("orders", json!({})),
            ],
            extra: Extra::new(),
        };
        let changes = schema_changes(&old, &grown);
        let text: Vec<(String, String, bool)> = changes
            .into_iter()
            .map(|c| (c.stream, c.change, c.breaking))
            .collect();
        assert_eq!(
            text,
            vec![
                ("users".into(), "column `x` changed type".into(), false),
                ("users".into(), "column `y` added".into(), false),
                ("orders".into(), "new stream".into(), false),
            ]
        );

        let broken = AirbyteCatalog {
            streams: vec![stream("users", json!({"x": {"type": "string"}}))],
            extra: Extra::new(),
        };
        let changes = schema_changes(&old, &broken);
        assert!(changes.iter().all(|c| c.breaking));
        assert_eq!(
            changes
                .iter()
                .map(|c| c.change.as_str())
                .collect::<Vec<_>>(),
            [
                "primary key field `id` is gone",
                "cursor field `at` is gone"
            ]
        );
        let gone = schema_changes(&old, &AirbyteCatalog::default());
        assert_eq!(gone[0].change, "the stream is gone");
        assert!(gone[0].breaking);
    }
}
