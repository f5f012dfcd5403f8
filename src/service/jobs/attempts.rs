//! A job's attempts: each one a sync run by the engine from the last state
//! committed to the store, retried with backoff as Airbyte's platform
//! does, each recorded with its counts, failure and log.

use super::{Prepared, Service};
use crate::api::{
    ApiError, Context as _, Failure, FailureOrigin, FailureType, JobKind, JobRequest, JobStatus,
    SyncStatus,
};
use crate::connector::config;
use crate::connector::{self, LogSink};
use crate::protocol::ConnectorSpecification;
use crate::protocol::{DestinationSyncMode, LogLevel, StateSnapshot, StreamDescriptor, SyncMode};
use crate::service::configs::{ConfigUpdates, Slot};
use crate::service::Call;
use crate::store::{self, Actor, ActorFields, AttemptEnd, Job, Store};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::Mapping;
use crate::sync::{self as engine, Progress, StateSink, SyncObserver, SyncPlan};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

impl Service {
    /// Runs a job's attempts until one succeeds, the job is cancelled, or
    /// the retry policy gives up; the job's status.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_attempts(
        &self,
        store: &Store,
        c: &store::Connection,
        reset_streams: Vec<StreamDescriptor>,
        p: &Prepared,
        job: &Job,
        req: &JobRequest,
        call: &Call,
    ) -> Result<JobStatus, ApiError> {
        let mut catalog = c.catalog.clone();
        let mapping = Mapping {
            namespace: c.namespace.clone(),
            prefix: c.prefix.clone(),
            fields: c.selected_fields.clone(),
        };
        let mut source = p.source.clone();
        let mut source_config = p.source_actor.config.clone();
        // A job taken over from a runner that died has attempts already:
        // it goes on from the state they committed, in the generation
        // they started.
        let earlier = store.list_attempts(job.id).await?.len() as i64;
        let resumed = earlier > 0;
        match req.kind {
            JobKind::Sync | JobKind::Refresh => {
                catalog = self.follow_schema(store, c, catalog, p, job, call).await?;
                if req.kind == JobKind::Refresh && !resumed {
                    store.delete_state(c.id).await?;
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
                super::state::clear_state(store, c.id, &reset_streams, req.streams.is_empty())
                    .await?;
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
            let generation = if truncate && !resumed {
                current + 1
            } else {
                current
            };
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
        store.set_connection_catalog(c.id, &stored).await?;
        if catalog.streams.is_empty() {
            return Ok(JobStatus::Succeeded);
        }

        let handle = tokio::runtime::Handle::current();
        let mut failed_in_a_row = 0u32;
        let mut number = earlier;
        loop {
            number += 1;
            let log_path = self.attempt_log_path(job.id, number);
            store.start_attempt(job.id, number, &log_path).await?;
            let log = Arc::new(
                AttemptLog::create(&log_path, p.secrets.clone(), call.echo()).with_context(
                    || format!("cannot create the log file {}", log_path.display()),
                )?,
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
            let state = match store.get_state(c.id).await? {
                Some(s) => StateSnapshot::from_file_value(s.state).map_err(|e| {
                    ApiError::failed(format!(
                        "connection `{}` has a bad stored state: {e}",
                        c.name
                    ))
                })?,
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
                run: call.run.clone(),
            };
            let progress =
                SavedProgress::new(store.clone(), job.id, number, handle.clone(), call.clone());
            let hooks = engine::SyncHooks {
                log: log.clone(),
                observer: Arc::new(progress.clone()),
                state_sink: Arc::new(StoreState {
                    store: store.clone(),
                    connection_id: c.id,
                    handle: handle.clone(),
                    progress,
                }),
                config_sink: Arc::new(ConfigUpdates {
                    source: store_slot(store, &handle, &p.source_actor, &p.source_spec),
                    destination: store_slot(
                        store,
                        &handle,
                        &p.destination_actor,
                        &p.destination_spec,
                    ),
                    log: log.clone(),
                }),
                cancel: call.cancel.clone(),
                grace: Duration::from_secs(10),
            };
            let span = tracing::info_span!("attempt", number);
            let report = engine::run(plan, hooks).instrument(span).await;
            tracing::info!(
                job = job.id,
                attempt = number,
                status = %report.status,
                records = report.records,
                committed = report.records_committed,
                "Attempt ended."
            );
            let failure = match (report.status, &report.failure) {
                (SyncStatus::Cancelled, _) => {
                    Some(call.stop_reason().cloned().unwrap_or_else(|| {
                        Failure::new(
                            FailureOrigin::Platform,
                            FailureType::ManualCancellation,
                            "the job was cancelled",
                        )
                    }))
                }
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
                .await?;
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
                call.notice(
                    LogLevel::Error,
                    format!("Attempt {number} failed: {why}. Giving up after {number} attempt(s)."),
                );
                return Ok(JobStatus::Failed);
            }
            let delay = req.retry.delay(failed_in_a_row);
            call.notice(
                LogLevel::Warn,
                format!(
                    "Attempt {number} failed: {why}. Retrying in {} from the last committed state.",
                    humantime::format_duration(delay)
                ),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = call.cancel.cancelled() => return Ok(JobStatus::Cancelled),
            }
        }
    }
}

/// Commits each state the destination confirmed to the store, as the
/// `--state` file does for an inline sync: a crash keeps the last one,
/// and the attempt's counts with it.
struct StoreState {
    store: Store,
    connection_id: i64,
    handle: tokio::runtime::Handle,
    progress: SavedProgress,
}

impl StateSink for StoreState {
    fn commit(&self, snapshot: &StateSnapshot, progress: &Progress) -> Result<(), String> {
        // The engine calls this from a blocking thread.
        self.handle.block_on(async {
            self.store
                .put_state(
                    self.connection_id,
                    snapshot.state_type(),
                    &snapshot.to_file_value(),
                )
                .await
                .map_err(|e| e.to_string())?;
            // The state is what matters; a count not saved is saved with
            // the next.
            self.progress.save(progress).await;
            Ok(())
        })
    }
}

/// How often a running attempt's counts are saved between states.
const SAVE_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A running attempt's progress, passed on to the call's followers and
/// saved to its row in the store: with each committed state (see
/// [`StoreState`]) and every [`SAVE_PROGRESS_EVERY`] between, so `job get`
/// shows a running job's counts, and an attempt whose daemon was killed
/// keeps the counts of what it committed. Cheap to clone; clones share
/// what was saved.
#[derive(Clone)]
struct SavedProgress {
    store: Store,
    job: i64,
    number: i64,
    handle: tokio::runtime::Handle,
    call: Call,
    /// The age of the newest progress saved: an older one arriving later
    /// is not saved over it.
    saved: Arc<tokio::sync::Mutex<Option<Duration>>>,
    /// When the last periodic save was started.
    last: Arc<std::sync::Mutex<std::time::Instant>>,
}

impl SavedProgress {
    fn new(
        store: Store,
        job: i64,
        number: i64,
        handle: tokio::runtime::Handle,
        call: Call,
    ) -> SavedProgress {
        SavedProgress {
            store,
            job,
            number,
            handle,
            call,
            saved: Arc::new(tokio::sync::Mutex::new(None)),
            last: Arc::new(std::sync::Mutex::new(std::time::Instant::now())),
        }
    }

    async fn save(&self, p: &Progress) {
        let mut saved = self.saved.lock().await;
        if saved.is_some_and(|newest| newest >= p.elapsed) {
            return;
        }
        match self
            .store
            .save_attempt_progress(self.job, self.number, &p.streams)
            .await
        {
            Ok(()) => *saved = Some(p.elapsed),
            Err(e) => {
                tracing::debug!(job = self.job, error = %e, "Cannot save the attempt's progress.")
            }
        }
    }
}

impl SyncObserver for SavedProgress {
    fn progress(&self, p: &Progress) {
        self.call.progress(p);
        {
            let mut last = self.last.lock().expect("never poisoned");
            if last.elapsed() < SAVE_PROGRESS_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        let (this, p) = (self.clone(), p.clone());
        self.handle.spawn(async move { this.save(&p).await });
    }

    fn event(&self, level: LogLevel, message: &str) {
        self.call.event(level, message);
    }
}

/// A stored source's or destination's config: an update is saved to it.
fn store_slot(
    store: &Store,
    handle: &tokio::runtime::Handle,
    actor: &Actor,
    spec: &ConnectorSpecification,
) -> Slot {
    let (store, handle, who) = (store.clone(), handle.clone(), actor.clone());
    let schema = spec.connection_specification.clone();
    Slot::new(
        spec.clone(),
        actor.config.clone(),
        Box::new(move |next| {
            if tokio::runtime::Handle::current().runtime_flavor()
                != tokio::runtime::RuntimeFlavor::MultiThread
            {
                return Err("the config cannot be saved from this runtime".into());
            }
            let fields = ActorFields {
                name: who.name.clone(),
                connector: who.connector.clone(),
                config: next.clone(),
                secret_paths: config::secret_pointers(&schema, next),
            };
            tokio::task::block_in_place(|| handle.block_on(store.update_actor(who.kind, &fields)))
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    )
}
