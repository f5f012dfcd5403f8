//! The `Api` the commands call: a wire contract. Requests and answers are
//! serde types of its own ([`types`]); requests carry values, not a
//! client's paths; long work is a [`Run`]: a stream of typed [`Event`]s
//! ending with the answer, cancelled by an Api call; every error is an
//! [`ApiError`]. `Local` runs operations in this process through
//! `service`; a `Remote` sends the same requests to a daemon. Commands are
//! written against the trait and import nothing below it.

pub mod error;
pub mod remote;
mod setup;
pub mod types;

/// The path fields of a config, for a client to make them absolute.
pub use crate::connector::config::visit_paths;
pub use error::{ApiError, Context, ErrorClass, ErrorCode};
pub use remote::{Endpoint, Remote};
pub use types::*;

use crate::connector::registry;
use crate::service::{Call, Service};
use crate::settings::Settings;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

/// Bytes in a form an HTTP body can carry.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

type Answer<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send>>;

/// Long work under way: its events as they come, then its answer.
pub struct Run<T> {
    id: String,
    events: UnboundedReceiver<Event>,
    answer: Answer<T>,
    done: Option<Result<T, ApiError>>,
}

impl<T> Run<T> {
    pub fn new(id: String, events: UnboundedReceiver<Event>, answer: Answer<T>) -> Self {
        Run {
            id,
            events,
            answer,
            done: None,
        }
    }

    /// What [`Api::cancel`] takes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next event; `None` once the run has answered and every event
    /// sent before its answer has been given.
    pub async fn next_event(&mut self) -> Option<Event> {
        if self.done.is_some() {
            return self.events.try_recv().ok();
        }
        tokio::select! {
            biased;
            Some(event) = self.events.recv() => Some(event),
            answer = &mut self.answer => {
                self.done = Some(answer);
                self.events.try_recv().ok()
            }
        }
    }

    /// The answer; events not yet taken are dropped.
    pub async fn answer(mut self) -> Result<T, ApiError> {
        match self.done.take() {
            Some(answer) => answer,
            None => self.answer.await,
        }
    }
}

#[async_trait]
pub trait Api: Send + Sync {
    /// Runs one sync to its end.
    async fn sync(&self, req: SyncRequest) -> Run<SyncAnswer>;

    /// Asks a run to stop: gracefully (the destination may confirm what it
    /// has), or `now` (its connectors are stopped at once).
    async fn cancel(&self, run: &str, now: bool) -> Result<(), ApiError>;

    async fn connector_spec(&self, req: ConnectorRequest) -> Run<ConnectorSpecification>;

    async fn connector_check(&self, req: ConnectorRequest) -> Run<CheckResult>;

    async fn connector_discover(&self, req: ConnectorRequest) -> Run<AirbyteCatalog>;

    /// A source's raw output, and how it ended.
    async fn connector_read(&self, req: ReadRequest) -> (Run<ConnectorExit>, ByteStream);

    /// Feeds `input` to a destination; its raw output, and how it ended.
    async fn connector_write(
        &self,
        req: WriteRequest,
        input: ByteStream,
    ) -> (Run<ConnectorExit>, ByteStream);

    /// Installs a connector ahead of use (its config is not needed).
    async fn connector_install(&self, req: ConnectorRequest) -> Run<ConnectorInfo>;

    /// Pulls a Docker connector's image now.
    async fn connector_pull(&self, req: ConnectorRequest) -> Run<ConnectorInfo>;

    async fn connector_list(&self) -> Result<Vec<ConnectorInfo>, ApiError>;

    /// Removes connector containers that were left behind.
    async fn system_sweep(&self) -> Result<SweepReport, ApiError>;

    /// The job store: its backend, where it is, its migrations (applied
    /// first if needed).
    async fn db_status(&self) -> Result<DbStatus, ApiError>;

    async fn actor_create(&self, req: ActorCreate) -> Run<Actor>;

    async fn actor_update(&self, req: ActorUpdate) -> Run<Actor>;

    async fn actor_list(&self, kind: ActorKind, show_secrets: bool)
        -> Result<Vec<Actor>, ApiError>;

    async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> Result<Actor, ApiError>;

    async fn actor_delete(&self, kind: ActorKind, name: &str) -> Result<(), ApiError>;

    async fn actor_check(&self, req: ActorRun) -> Run<CheckResult>;

    async fn source_discover(&self, req: ActorRun) -> Run<AirbyteCatalog>;

    async fn connection_create(&self, req: ConnectionCreate) -> Run<Connection>;

    async fn connection_update(&self, req: ConnectionUpdate) -> Run<Connection>;

    async fn connection_list(&self) -> Result<Vec<Connection>, ApiError>;

    async fn connection_get(&self, name: &str) -> Result<Connection, ApiError>;

    async fn connection_delete(&self, name: &str) -> Result<(), ApiError>;

    async fn connection_set_status(
        &self,
        name: &str,
        status: ConnectionStatus,
    ) -> Result<(), ApiError>;

    /// Runs a sync, reset or refresh job now, to its end.
    async fn connection_job(&self, req: JobRequest) -> Run<JobDetail>;

    async fn job_list(&self, filter: JobFilter) -> Result<Vec<Job>, ApiError>;

    async fn job_get(&self, job: JobRef) -> Result<JobDetail, ApiError>;

    /// Queues a job for a daemon to run and answers at once.
    async fn job_enqueue(&self, req: JobRequest) -> Result<Job, ApiError>;

    /// Cancels a queued or running job: the job as it stands after.
    async fn job_cancel(&self, job: JobRef) -> Result<Job, ApiError>;

    /// Whether jobs run apart from the command that starts them (a
    /// daemon's do): Ctrl-C then leaves the job running.
    fn jobs_run_apart(&self) -> bool {
        false
    }

    async fn job_logs(&self, job: JobRef, attempt: Option<i64>) -> Result<JobLog, ApiError>;

    /// A job's log as it is written, ending with the job.
    async fn job_logs_follow(
        &self,
        job: JobRef,
        attempt: Option<i64>,
    ) -> Result<ByteStream, ApiError>;

    async fn state_get(&self, connection: &str) -> Result<Option<ConnectionState>, ApiError>;

    async fn state_set(&self, connection: &str, state: serde_json::Value) -> Result<(), ApiError>;

    async fn state_reset(&self, connection: &str, streams: &[String]) -> Result<(), ApiError>;

    /// What applying a setup would change; applied unless a dry run.
    async fn apply(&self, req: ApplyRequest) -> Run<ApplyPlan>;

    /// The current sources, destinations and connections, secrets masked.
    async fn export(&self) -> Result<Setup, ApiError>;

    /// The daemon this Api talks to: only a [`Remote`] has one.
    async fn daemon_status(&self) -> Result<DaemonStatus, ApiError> {
        Err(ApiError::unreachable("no sluice daemon is running here")
            .hint("start one with `sluice daemon start`, or name one with --host"))
    }
}

/// What a shell completes from this machine (see
/// [`Local::names_for_completion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Sources,
    Destinations,
    Connections,
    Connectors,
}

/// Operations run in this process.
pub struct Local {
    service: Service,
    /// The runs under way, by id, for cancelling them.
    runs: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl Local {
    pub fn new(settings: Settings) -> Self {
        Local {
            service: Service::new(settings),
            runs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The operations this Api runs: for the daemon, which serves this
    /// same Api and reads figures of the store besides.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Names a shell may complete, from this machine's store and
    /// connectors, with the settings of the environment: sources,
    /// destinations, connections, or connectors. Never creates a store and
    /// never fails: what cannot be read completes nothing.
    pub fn names_for_completion(what: Completion) -> Vec<String> {
        let Ok(settings) = Settings::from_env(&crate::settings::Flags::default()) else {
            return Vec::new();
        };
        if let crate::store::Location::Sqlite(path) = &settings.store {
            if what != Completion::Connectors && !path.exists() {
                return Vec::new();
            }
        }
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Vec::new();
        };
        let api = Local::new(settings);
        runtime.block_on(async {
            let names = match what {
                Completion::Sources | Completion::Destinations => {
                    let kind = if what == Completion::Sources {
                        ActorKind::Source
                    } else {
                        ActorKind::Destination
                    };
                    api.actor_list(kind, false)
                        .await
                        .map(|all| all.into_iter().map(|a| a.name).collect())
                }
                Completion::Connections => api
                    .connection_list()
                    .await
                    .map(|all| all.into_iter().map(|c| c.name).collect()),
                Completion::Connectors => api
                    .connector_list()
                    .await
                    .map(|all| all.into_iter().map(|c| c.reference).collect()),
            };
            names.unwrap_or_default()
        })
    }

    /// `work` as a run. It is not spawned: it runs as whoever follows the
    /// run polls it (`next_event`, `answer`), on that task, as an inline
    /// sync did before it was a run.
    fn start<T, F, Fut>(&self, options: RunOptions, work: F) -> Run<T>
    where
        T: Send + 'static,
        F: FnOnce(Service, Call) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let id = registry::new_run_id();
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let call = Call::new(id.clone(), options, cancel.clone(), tx);
        self.runs
            .lock()
            .expect("runs lock")
            .insert(id.clone(), cancel);
        let runs = self.runs.clone();
        let service = self.service.clone();
        let run_id = id.clone();
        let answer = Box::pin(async move {
            let answer = work(service, call).await;
            runs.lock().expect("runs lock").remove(&run_id);
            answer
        });
        Run::new(id, rx, answer)
    }
}

/// A pipe for a connector's output: the service writes one end, the caller
/// reads the other as a stream.
fn output_pipe() -> (tokio::io::DuplexStream, ByteStream) {
    let (writer, reader) = tokio::io::duplex(1 << 16);
    (writer, Box::pin(tokio_util::io::ReaderStream::new(reader)))
}

#[async_trait]
impl Api for Local {
    async fn sync(&self, req: SyncRequest) -> Run<SyncAnswer> {
        self.start(req.options.clone(), move |s, call| async move {
            s.sync(req, &call).await
        })
    }

    async fn cancel(&self, run: &str, now: bool) -> Result<(), ApiError> {
        let token = self.runs.lock().expect("runs lock").get(run).cloned();
        match token {
            Some(token) => token.cancel(),
            None if !now => {
                return Err(ApiError::not_found(format!(
                    "there is no run `{run}` under way"
                )))
            }
            None => {}
        }
        if now {
            registry::stop_run(run).await;
        }
        Ok(())
    }

    async fn connector_spec(&self, req: ConnectorRequest) -> Run<ConnectorSpecification> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connector_spec(&req, &call).await
        })
    }

    async fn connector_check(&self, req: ConnectorRequest) -> Run<CheckResult> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connector_check(&req, &call).await
        })
    }

    async fn connector_discover(&self, req: ConnectorRequest) -> Run<AirbyteCatalog> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connector_discover(&req, &call).await
        })
    }

    async fn connector_read(&self, req: ReadRequest) -> (Run<ConnectorExit>, ByteStream) {
        let (mut writer, output) = output_pipe();
        let run = self.start(req.options.clone(), move |s, call| async move {
            s.connector_read(&req, &mut writer, &call).await
        });
        (run, output)
    }

    async fn connector_write(
        &self,
        req: WriteRequest,
        input: ByteStream,
    ) -> (Run<ConnectorExit>, ByteStream) {
        let (mut writer, output) = output_pipe();
        let input = Box::new(tokio_util::io::StreamReader::new(input));
        let run = self.start(req.options.clone(), move |s, call| async move {
            s.connector_write(&req, input, &mut writer, &call).await
        });
        (run, output)
    }

    async fn connector_install(&self, req: ConnectorRequest) -> Run<ConnectorInfo> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connector_install(&req.connector, &call).await
        })
    }

    async fn connector_pull(&self, req: ConnectorRequest) -> Run<ConnectorInfo> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connector_pull(&req.connector, &call).await
        })
    }

    async fn connector_list(&self) -> Result<Vec<ConnectorInfo>, ApiError> {
        self.service.connector_list()
    }

    async fn system_sweep(&self) -> Result<SweepReport, ApiError> {
        self.service.system_sweep().await
    }

    async fn db_status(&self) -> Result<DbStatus, ApiError> {
        self.service.db_status().await
    }

    async fn actor_create(&self, req: ActorCreate) -> Run<Actor> {
        self.start(req.options.clone(), move |s, call| async move {
            s.actor_create(&req, &call).await
        })
    }

    async fn actor_update(&self, req: ActorUpdate) -> Run<Actor> {
        self.start(req.options.clone(), move |s, call| async move {
            s.actor_update(&req, &call).await
        })
    }

    async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> Result<Vec<Actor>, ApiError> {
        self.service.actor_list(kind, show_secrets).await
    }

    async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> Result<Actor, ApiError> {
        self.service.actor_get(kind, name, show_secrets).await
    }

    async fn actor_delete(&self, kind: ActorKind, name: &str) -> Result<(), ApiError> {
        self.service.actor_delete(kind, name).await
    }

    async fn actor_check(&self, req: ActorRun) -> Run<CheckResult> {
        self.start(req.options.clone(), move |s, call| async move {
            s.actor_check(&req, &call).await
        })
    }

    async fn source_discover(&self, req: ActorRun) -> Run<AirbyteCatalog> {
        self.start(req.options.clone(), move |s, call| async move {
            s.source_discover(&req, &call).await
        })
    }

    async fn connection_create(&self, req: ConnectionCreate) -> Run<Connection> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connection_create(&req, &call).await
        })
    }

    async fn connection_update(&self, req: ConnectionUpdate) -> Run<Connection> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connection_update(&req, &call).await
        })
    }

    async fn connection_list(&self) -> Result<Vec<Connection>, ApiError> {
        self.service.connection_list().await
    }

    async fn connection_get(&self, name: &str) -> Result<Connection, ApiError> {
        self.service.connection_get(name).await
    }

    async fn connection_delete(&self, name: &str) -> Result<(), ApiError> {
        self.service.connection_delete(name).await
    }

    async fn connection_set_status(
        &self,
        name: &str,
        status: ConnectionStatus,
    ) -> Result<(), ApiError> {
        self.service.connection_set_status(name, status).await
    }

    async fn connection_job(&self, req: JobRequest) -> Run<JobDetail> {
        self.start(req.options.clone(), move |s, call| async move {
            s.connection_job(&req, &call).await
        })
    }

    async fn job_list(&self, filter: JobFilter) -> Result<Vec<Job>, ApiError> {
        self.service.job_list(&filter).await
    }

    async fn job_get(&self, job: JobRef) -> Result<JobDetail, ApiError> {
        let id = self.service.job_number(&job).await?;
        self.service.job_get(id).await
    }

    async fn job_logs_follow(
        &self,
        job: JobRef,
        attempt: Option<i64>,
    ) -> Result<ByteStream, ApiError> {
        let id = self.service.job_number(&job).await?;
        // Run here, no daemon answered: a queued job would wait for one
        // in silence.
        let detail = self.service.job_get(id).await?;
        if detail.job.status == JobStatus::Pending {
            return Err(ApiError::unreachable(format!(
                "job {id} is queued, and no sluice daemon runs here to run it"
            ))
            .hint(format!(
                "start one with `sluice daemon start` (or name the one that runs it with --host), \
                 or cancel the job with `sluice job cancel {id}`"
            )));
        }
        self.service.job_logs_follow(id, attempt).await
    }

    async fn job_enqueue(&self, req: JobRequest) -> Result<Job, ApiError> {
        Err(ApiError::user(format!(
            "no sluice daemon runs here to take the job of `{}`",
            req.connection
        ))
        .hint("start one with `sluice daemon start`, or run the job now without --detach"))
    }

    async fn job_cancel(&self, job: JobRef) -> Result<Job, ApiError> {
        let id = self.service.job_number(&job).await?;
        self.service.job_cancel(id).await
    }

    async fn job_logs(&self, job: JobRef, attempt: Option<i64>) -> Result<JobLog, ApiError> {
        let id = self.service.job_number(&job).await?;
        self.service.job_logs(id, attempt).await
    }

    async fn state_get(&self, connection: &str) -> Result<Option<ConnectionState>, ApiError> {
        self.service.state_get(connection).await
    }

    async fn state_set(&self, connection: &str, state: serde_json::Value) -> Result<(), ApiError> {
        self.service.state_set(connection, state).await
    }

    async fn state_reset(&self, connection: &str, streams: &[String]) -> Result<(), ApiError> {
        self.service.state_reset(connection, streams).await
    }

    async fn apply(&self, req: ApplyRequest) -> Run<ApplyPlan> {
        self.start(req.options.clone(), move |s, call| async move {
            s.apply(&req, &call).await
        })
    }

    async fn export(&self) -> Result<Setup, ApiError> {
        self.service.export().await
    }
}
