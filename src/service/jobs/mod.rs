//! Jobs of managed connections: sync, reset and refresh, each recorded with
//! its attempts in the job store, and what can be read of them afterwards.
//!
//! `mod.rs` starts a job (who owns it, what it runs against) and answers
//! about jobs; [`attempts`] runs a job's attempts with retries, [`schema`]
//! follows a source's schema changes, [`state`] is a connection's state,
//! [`queue`] queues jobs for a daemon and runs those its runner leases,
//! [`follow`] gives a job's log as it is written.

mod attempts;
mod follow;
mod queue;
mod schema;
mod state;

pub use schema::schema_changes;
pub(crate) use state::state_streams_known;

use super::{Call, Service};
use crate::api::{
    ActorKind, ApiError, Attempt, Context as _, Event, Failure, FailureOrigin, FailureType,
    Job as JobView, JobDetail, JobFilter, JobLog, JobRef, JobRequest, JobStatus,
};
use crate::connector::config::Secrets;
use crate::connector::{Connector, LogSink, Role};
use crate::owner::{Liveness, Owner};
use crate::protocol::{ConnectorSpecification, LogLevel};
use crate::store::{self, Actor, AttemptEnd, Job, Store};
use crate::sync::log::AttemptLog;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::Instrument as _;

/// How long a job run in this process waits for its webhooks (a daemon
/// never waits: its calls go on by themselves).
const IN_PROCESS_NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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

impl JobView {
    fn of(j: &Job) -> Self {
        JobView {
            id: j.id,
            uuid: j.uuid.clone(),
            connection_id: j.connection_id,
            connection: j.connection.clone(),
            kind: j.kind,
            trigger: j.trigger,
            status: j.status,
            owner: j.owner.as_deref().map(shown),
            changes: j.changes.clone(),
            created_at: j.created_at,
            started_at: j.started_at,
            ended_at: j.ended_at,
        }
    }
}

impl From<store::Attempt> for Attempt {
    fn from(a: store::Attempt) -> Self {
        Attempt {
            job_id: a.job_id,
            number: a.number,
            status: a.status,
            stats: a.stats,
            records: a.records,
            bytes: a.bytes,
            records_committed: a.records_committed,
            failure: a.failure,
            log_path: a.log_path,
            started_at: a.started_at,
            ended_at: a.ended_at,
        }
    }
}

impl Service {
    fn attempt_log_path(&self, job: i64, number: i64) -> PathBuf {
        self.job_log_dir(job).join(format!("attempt-{number}.log"))
    }

    async fn prepare(&self, c: &store::Connection, call: &Call) -> Result<Prepared, ApiError> {
        let s = self.store().await?;
        let source_actor = s.get_actor_by_id(ActorKind::Source, c.source_id).await?;
        let destination_actor = s
            .get_actor_by_id(ActorKind::Destination, c.destination_id)
            .await?;
        let source = self
            .resolve(&source_actor.connector, call)
            .with_context(|| format!("source `{}`", source_actor.name))?;
        let destination = self
            .resolve(&destination_actor.connector, call)
            .with_context(|| format!("destination `{}`", destination_actor.name))?;
        source
            .plays(Role::Source)
            .with_context(|| format!("source `{}`", source_actor.name))?;
        destination
            .plays(Role::Destination)
            .with_context(|| format!("destination `{}`", destination_actor.name))?;
        source.connector.preflight().await?;
        destination.connector.preflight().await?;
        let early: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(Secrets::default(), call.echo()));
        let scx = self.context(Role::Source, early.clone(), call);
        let dcx = self.context(Role::Destination, early, call);
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
        let log: Arc<dyn LogSink> = Arc::new(AttemptLog::memory(secrets.clone(), call.echo()));
        let (scx, dcx) = (
            self.context(Role::Source, log.clone(), call),
            self.context(Role::Destination, log, call),
        );
        let (source_name, destination_name) = (
            format!("source `{}`", source_actor.name),
            format!("destination `{}`", destination_actor.name),
        );
        tokio::try_join!(
            source.check_cheaply(&source_actor.config, &scx, &source_name),
            destination.check_cheaply(&destination_actor.config, &dcx, &destination_name)
        )?;
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
    pub async fn connection_job(
        &self,
        req: &JobRequest,
        call: &Call,
    ) -> Result<JobDetail, ApiError> {
        let c = self.connection(&req.connection).await?;
        queue::check_runnable(&c, req.kind)?;
        let reset_streams = state::selected(&c.catalog, &req.streams)?;
        let store = self.store().await?.clone();
        let owner = Owner::current().to_text();
        let job = match store.create_job(c.id, req.kind, &owner).await {
            Err(store::StoreError::JobRunning { .. }) => {
                // Its process may be gone (killed, or the machine restarted);
                // a queued one is a daemon's to run.
                self.refuse_active(&store, &c).await?;
                store.create_job(c.id, req.kind, &owner).await
            }
            other => other,
        }?;
        call.send(Event::JobStarted { job: job.id });
        // What keeps the job from running (a config its connector's check
        // refuses) is recorded on it, as Airbyte does and as a daemon's
        // runner does (`run_leased_job`).
        let status = match self.prepare(&c, call).await {
            Ok(prepared) => {
                self.execute(&store, &c, reset_streams, &prepared, &job, req, call)
                    .await?
            }
            Err(e) => {
                self.record_failure(&store, &job, &e, &Secrets::default())
                    .await?;
                JobStatus::Failed
            }
        };
        store.finish_job(job.id, status).await?;
        // This process may exit once the job is answered: its webhooks
        // get a moment to be called first.
        let calls = self.job_ended(job.id).await;
        if !calls.is_empty() {
            let all = futures_util::future::join_all(calls);
            if tokio::time::timeout(IN_PROCESS_NOTIFY_WAIT, all)
                .await
                .is_err()
            {
                tracing::warn!(job = job.id, "Webhooks still failing; not waiting longer.");
            }
        }
        self.job_get(job.id).await
    }

    /// Runs a recorded job's attempts to their end, whoever recorded it
    /// (`connection_job` in this process, or a daemon's runner that leased
    /// it): its status, which the caller records. What fails before or
    /// between attempts is recorded as an attempt of its own.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        store: &Store,
        c: &store::Connection,
        reset_streams: Vec<crate::protocol::StreamDescriptor>,
        prepared: &Prepared,
        job: &Job,
        req: &JobRequest,
        call: &Call,
    ) -> Result<JobStatus, ApiError> {
        let span = tracing::info_span!("job", id = job.id, connection = %c.name, kind = %req.kind);
        tracing::info!(parent: &span, run = %call.run, "Job started.");
        let jobs_dir = self.settings.data_dir.join("jobs");
        crate::fsutil::ensure_private_dir(&self.settings.data_dir)
            .and_then(|()| crate::fsutil::ensure_private_dir(&jobs_dir))
            .with_context(|| format!("cannot create {}", jobs_dir.display()))?;
        let status = match self
            .run_attempts(store, c, reset_streams, prepared, job, req, call)
            .instrument(span.clone())
            .await
        {
            Ok(status) => status,
            Err(e) => {
                self.record_failure(store, job, &e, &prepared.secrets)
                    .await?;
                JobStatus::Failed
            }
        };
        tracing::info!(parent: &span, status = %status, "Job ended.");
        Ok(status)
    }

    /// Records what failed outside an attempt as an attempt of its own.
    async fn record_failure(
        &self,
        store: &Store,
        job: &Job,
        e: &ApiError,
        secrets: &Secrets,
    ) -> Result<(), ApiError> {
        let message = secrets.redact(&e.message).into_owned();
        let number = store.list_attempts(job.id).await?.len() as i64 + 1;
        let path = self.attempt_log_path(job.id, number);
        store.start_attempt(job.id, number, &path).await?;
        if let Ok(log) = AttemptLog::create(&path, secrets.clone(), None) {
            log.log(
                "sluice",
                LogLevel::Error,
                &format!("The job failed: {message}"),
            );
            if let Some(hint) = &e.hint {
                log.log("sluice", LogLevel::Info, &format!("What to do: {hint}"));
            }
        }
        let failure_type = if e.class == crate::api::ErrorClass::User {
            FailureType::ConfigError
        } else {
            FailureType::SystemError
        };
        store
            .finish_attempt(
                job.id,
                number,
                &AttemptEnd {
                    status: crate::api::AttemptStatus::Failed,
                    stats: Vec::new(),
                    records: 0,
                    bytes: 0,
                    records_committed: 0,
                    failure: Some(Failure::new(FailureOrigin::Platform, failure_type, message)),
                },
            )
            .await?;
        Ok(())
    }

    /// Ends the connection's running jobs whose process is gone; refuses
    /// while one still runs (here, or where this sluice cannot see).
    async fn end_orphans(&self, store: &Store, c: &store::Connection) -> Result<(), ApiError> {
        let running = store
            .list_jobs(&store::JobFilter {
                connection_id: Some(c.id),
                status: Some(JobStatus::Running),
                limit: 0,
            })
            .await?;
        for job in running {
            let owner = job.owner.clone().unwrap_or_default();
            let who = shown(&owner);
            match owner_liveness(&owner) {
                Liveness::Gone => {
                    let why = format!("the sluice process that ran this job ({who}) is gone");
                    store.abandon_job(job.id, &why).await?;
                }
                alive => {
                    let hint = match alive {
                        Liveness::Running => format!(
                            "wait for it to end (`sluice job get {}`), or stop that process ({who})",
                            job.id
                        ),
                        _ => format!(
                            "it runs where this sluice cannot see ({who}); wait for it to end (`sluice job get {}`)",
                            job.id
                        ),
                    };
                    return Err(ApiError::conflict(format!(
                        "connection `{}` already has a running job ({}, job {})",
                        c.name, job.kind, job.id
                    ))
                    .hint(hint));
                }
            }
        }
        Ok(())
    }

    /// The number of a job given by its number or its stable id; a number
    /// is taken as it is (what answers about it says if it is none).
    pub async fn job_number(&self, job: &JobRef) -> Result<i64, ApiError> {
        match job {
            JobRef::Number(n) => Ok(*n),
            JobRef::Uuid(uuid) => self.store().await?.job_id_of(uuid).await?.ok_or_else(|| {
                ApiError::not_found(format!("there is no job with id `{uuid}`"))
                    .hint("`sluice job list --output json` shows the jobs and their ids")
            }),
        }
    }

    pub async fn job_get(&self, id: i64) -> Result<JobDetail, ApiError> {
        let s = self.store().await?;
        let job = s.get_job(id).await?.ok_or_else(|| {
            ApiError::not_found(format!("there is no job {id}"))
                .hint("`sluice job list` shows the jobs")
        })?;
        let attempts = s.list_attempts(id).await?;
        Ok(JobDetail {
            job: JobView::of(&job),
            attempts: attempts.into_iter().map(Attempt::from).collect(),
        })
    }

    pub async fn job_list(&self, filter: &JobFilter) -> Result<Vec<JobView>, ApiError> {
        let connection_id = match &filter.connection {
            Some(name) => Some(self.connection(name).await?.id),
            None => None,
        };
        let jobs = self
            .store()
            .await?
            .list_jobs(&store::JobFilter {
                connection_id,
                status: filter.status,
                limit: filter.limit,
            })
            .await?;
        Ok(jobs.iter().map(JobView::of).collect())
    }

    /// The log of one attempt (the last when `attempt` is `None`).
    pub async fn job_logs(&self, id: i64, attempt: Option<i64>) -> Result<JobLog, ApiError> {
        let job = self.job_get(id).await?;
        let a = match attempt {
            Some(n) => job.attempts.iter().find(|a| a.number == n),
            None => job.attempts.last(),
        };
        let Some(a) = a else {
            return Err(ApiError::not_found(match attempt {
                Some(n) => format!("job {id} has no attempt {n}"),
                None => format!("job {id} has no attempts"),
            })
            .hint(format!("`sluice job get {id}` shows its attempts")));
        };
        let path = a.log_path.clone().unwrap_or_default();
        match std::fs::read_to_string(&path) {
            Ok(log) => Ok(JobLog {
                job: id,
                attempt: a.number,
                log,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ApiError::not_found(format!(
                    "the log of job {id}, attempt {} ({path}) is not on this machine",
                    a.number
                )))
            }
            Err(e) => Err(ApiError::failed(format!("cannot read {path}: {e}"))),
        }
    }
}

/// A job's owner as people read it: `pid 123 on host`.
fn shown(owner: &str) -> String {
    Owner::from_text(owner)
        .map(|o| format!("pid {} on {}", o.pid, o.host))
        .unwrap_or_else(|| owner.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_alive_only_here_and_while_they_run() {
        assert_eq!(
            owner_liveness(&Owner::current().to_text()),
            Liveness::Running
        );
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
        assert_eq!(shown(&gone.to_text()), format!("pid {pid} on {here}"));
    }
}
